#!/bin/sh
# Regenerate tests/schedules/quartz_cases.json with the real Quartz CronExpression.
#
# Needs Java 17+ and Debian's Quartz: apt-get install -y libquartz2-java
# Usage (from anywhere): sh tests/schedules/quartz_reference/generate.sh
# Inputs are in inputs.tsv next to this script (expression, zone, after, count).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
jar=$(ls /usr/share/java/quartz2-*.jar 2>/dev/null | head -n 1)
if [ -z "$jar" ]; then
    echo "Quartz not found: apt-get install -y libquartz2-java" >&2
    exit 1
fi
classpath="$jar:/usr/share/java/slf4j-api.jar"
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
javac -d "$build" -cp "$classpath" "$here/Generate.java"
java -cp "$build:$classpath" Generate "$(basename "$jar" .jar)" \
    < "$here/inputs.tsv" > "$here/../quartz_cases.json"
echo "wrote $(grep -c '"expression"' "$here/../quartz_cases.json") cases to tests/schedules/quartz_cases.json"
