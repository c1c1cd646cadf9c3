from tests.finish_paths import finish_path  # noqa: F401  (the state machine's two finish paths)
