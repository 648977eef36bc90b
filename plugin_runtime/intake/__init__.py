"""Events in: signed webhooks checked (``webhooks``), events stored with their planned runs
(``intake``), then handed to the scheduler."""

from plugin_runtime.intake.intake import MAX_DEPTH, Intake, plan

__all__ = ["MAX_DEPTH", "Intake", "plan"]
