"""Which run runs when: a durable run queue (``queue``) and the workers over it (``lanes``)."""

from plugin_runtime.scheduler.lanes import LANE_SLICE, Execute, Scheduler, Step
from plugin_runtime.scheduler.queue import Lane, RunQueue, StoreRunQueue

__all__ = ["LANE_SLICE", "Execute", "Lane", "RunQueue", "Scheduler", "Step", "StoreRunQueue"]
