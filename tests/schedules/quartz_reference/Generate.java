// Reference fire times from the real org.quartz.CronExpression (see generate.sh).
//
// Reads tab-separated lines "expression<TAB>zone<TAB>after<TAB>count" (after is an ISO-8601
// instant such as 2024-03-30T23:00:00Z; '#' lines and blank lines are skipped) and writes
// a JSON document with, for each line, either the next `count` fire times as ISO-8601 UTC
// instants, Quartz's refusal message ("error"), or the exception Quartz throws while
// evaluating an expression it accepted ("evaluation_error").

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.text.ParseException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.TimeZone;
import org.quartz.CronExpression;

public final class Generate {
    private static final long HANG_MILLIS = 5000;

    @SuppressWarnings("removal")
    private static void stopForGood(Thread worker) {
        worker.stop();
    }

    private static String quote(String text) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.append('"').toString();
    }

    private static String evaluate(String expression, String zone, String after, int count) {
        StringBuilder out = new StringBuilder();
        out.append("{\"expression\": ").append(quote(expression));
        out.append(", \"zone\": ").append(quote(zone));
        out.append(", \"after\": ").append(quote(after));
        out.append(", \"count\": ").append(count);
        CronExpression cron;
        try {
            cron = new CronExpression(expression);
        } catch (ParseException refused) {
            return out.append(", \"error\": ").append(quote(refused.getMessage())).append("}").toString();
        }
        cron.setTimeZone(TimeZone.getTimeZone(zone));
        List<String> fires = new ArrayList<>();
        String[] failure = {null};
        // Some expressions make getNextValidTimeAfter loop for ever: evaluate on a thread
        // that is stopped after a few seconds, and record that Quartz hangs.
        Thread worker = new Thread(() -> {
            Date current = Date.from(Instant.parse(after));
            try {
                for (int i = 0; i < count; i++) {
                    current = cron.getNextValidTimeAfter(current);
                    if (current == null) {
                        break;
                    }
                    synchronized (fires) {
                        fires.add(quote(current.toInstant().toString()));
                    }
                }
            } catch (RuntimeException error) {
                failure[0] = error.getClass().getName();
            }
        });
        worker.setDaemon(true);
        worker.start();
        try {
            worker.join(HANG_MILLIS);
        } catch (InterruptedException interrupted) {
            throw new IllegalStateException(interrupted);
        }
        if (worker.isAlive()) {
            stopForGood(worker);
            failure[0] = "hangs";
        }
        if (failure[0] != null) {
            return out.append(", \"evaluation_error\": ").append(quote(failure[0])).append("}").toString();
        }
        synchronized (fires) {
            return out.append(", \"fires\": [").append(String.join(", ", fires)).append("]}").toString();
        }
    }

    public static void main(String[] args) throws Exception {
        BufferedReader input = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        List<String> cases = new ArrayList<>();
        String line;
        while ((line = input.readLine()) != null) {
            if (line.isBlank() || line.startsWith("#")) {
                continue;
            }
            String[] parts = line.split("\t");
            if (parts.length != 4) {
                throw new IllegalArgumentException("expected 4 tab-separated columns: " + line);
            }
            cases.add("  " + evaluate(parts[0], parts[1], parts[2], Integer.parseInt(parts[3].trim())));
        }
        System.out.println("{");
        System.out.println(" \"generator\": \"tests/schedules/quartz_reference/generate.sh\",");
        System.out.println(" \"quartz\": " + quote(args.length > 0 ? args[0] : "unknown") + ",");
        System.out.println(" \"java\": " + quote(System.getProperty("java.version")) + ",");
        System.out.println(" \"max_year\": " + CronExpression.MAX_YEAR + ",");
        System.out.println(" \"cases\": [");
        System.out.println(String.join(",\n", cases));
        System.out.println(" ]");
        System.out.println("}");
    }
}
