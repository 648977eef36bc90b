"""Runs' ends: the policy every action passes (``policy``, pure, shared with the dry-run),
the outbox drained to the platform (``outbox``), and the finishing of a run (``applier``)."""
