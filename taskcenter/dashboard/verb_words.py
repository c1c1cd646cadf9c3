"""How the pages word each verb of the tasks app (taskcenter.tasks.verbs), keyed by the
verb's key: its button's label and hint, its confirmation dialog, and the flash messages
after it ran ("done") or after someone else got there first ("already")."""

from __future__ import annotations

from dataclasses import dataclass

from taskcenter.tasks.models import SubtaskInstance


@dataclass(frozen=True)
class Confirmation:
    """The confirmation dialog. Placeholders: {task}, {name}, {subtask}, {next_run}."""

    title: str
    body: str
    button: str


@dataclass(frozen=True)
class VerbWords:
    label: str  # the button's text
    hint: str  # what an enabled button does
    confirmation: Confirmation
    done: str  # the flash after it ran; placeholders {task}, {subtask}
    already: str  # "<actor> already <already>" when someone else got there first
    # Skip words itself differently when the failed step was a rollback.
    hint_in_rollback: str = ""
    confirmation_in_rollback: Confirmation | None = None

    def hint_for(self, subtask: SubtaskInstance | None) -> str:
        if subtask is not None and subtask.is_rollback and self.hint_in_rollback:
            return self.hint_in_rollback
        return self.hint

    def confirmation_for(self, subtask: SubtaskInstance | None) -> Confirmation:
        if subtask is not None and subtask.is_rollback and self.confirmation_in_rollback:
            return self.confirmation_in_rollback
        return self.confirmation


WORDS: dict[str, VerbWords] = {
    "retry": VerbWords(
        label="Retry",
        hint="Run every failed subtask again and continue the task.",
        confirmation=Confirmation(
            "Retry task #{task} “{name}”?",
            "Every failed subtask runs again and the task continues from where it stopped.",
            "Retry task",
        ),
        done="Retry started: the failed subtasks of task #{task} run again.",
        already="retried this task",
    ),
    "rollback": VerbWords(
        label="Roll back",
        hint="Undo every subtask that has run, in reverse order.",
        confirmation=Confirmation(
            "Roll back task #{task} “{name}”?",
            "Every subtask that has run is undone, in reverse order. This is OCP's “give "
            "up”: the task ends as rolled back, not as done.",
            "Roll back task",
        ),
        done="Rollback started: task #{task} is being undone step by step.",
        already="rolled this task back",
    ),
    "cancel_task": VerbWords(
        label="Cancel task",
        hint="Stop every running and queued subtask of this task; they end as failed (canceled).",
        confirmation=Confirmation(
            "Cancel task #{task} “{name}”?",
            "Every running subtask is stopped by its worker and every queued one ends "
            "at once, without a worker; they end as failed (canceled) and the task "
            "stops. You can retry it later.",
            "Cancel task",
        ),
        done="Cancel requested: the running and queued subtasks of task #{task} stop.",
        already="canceled this task",
    ),
    "subtask_retry": VerbWords(
        label="Retry",
        hint="Run this subtask again.",
        confirmation=Confirmation(
            "Retry “{subtask}”?",
            "This subtask runs again (run {next_run}); the task continues when it succeeds.",
            "Retry subtask",
        ),
        done="“{subtask}” runs again.",
        already="retried “{subtask}”",
    ),
    "skip": VerbWords(
        label="Skip",
        hint="Set this subtask to successful without running it (set to success).",
        hint_in_rollback="Treat this step's rollback as done without running it.",
        confirmation=Confirmation(
            "Skip “{subtask}”?",
            "The subtask is set to successful without running, and the steps after it go "
            "on. Use this only when its work was done another way.",
            "Skip subtask",
        ),
        confirmation_in_rollback=Confirmation(
            "Skip the rollback of “{subtask}”?",
            "The rollback of this step is treated as done without running it, and the "
            "rollback goes on with the steps before it.",
            "Skip rollback",
        ),
        done="“{subtask}” was skipped (set to success); the task goes on.",
        already="skipped “{subtask}”",
    ),
    "cancel": VerbWords(
        label="Cancel",
        hint="Stop this subtask (running, or queued for a worker); it ends as failed (canceled).",
        confirmation=Confirmation(
            "Cancel “{subtask}”?",
            "A running subtask is stopped by its worker; a queued one ends at once, "
            "without a worker. It ends as failed (canceled) and the task stops after it. "
            "You can retry it later.",
            "Cancel subtask",
        ),
        done="Cancel requested: “{subtask}” stops (at once if it was queued).",
        already="canceled “{subtask}”",
    ),
    "approve": VerbWords(
        label="Approve",
        hint="Approve this step: the steps after it run.",
        confirmation=Confirmation(
            "Approve “{subtask}” of task #{task}?",
            "The steps after it run with the parameters below. Your name and reason are "
            "kept in the audit trail.",
            "Approve",
        ),
        done="“{subtask}” approved; the task goes on.",
        already="decided “{subtask}”",
    ),
    "reject": VerbWords(
        label="Reject",
        hint="Reject this step: it fails and the task stops here.",
        confirmation=Confirmation(
            "Reject “{subtask}” of task #{task}?",
            "The step fails and the task stops before the steps after it; it can be "
            "retried later to ask again. Your name and reason are kept in the audit trail.",
            "Reject",
        ),
        done="“{subtask}” rejected; the task stops here.",
        already="decided “{subtask}”",
    ),
}
