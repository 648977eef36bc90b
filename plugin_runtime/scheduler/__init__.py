"""Which run runs when: a durable run queue (``queue``) and the workers over it (``lanes``)."""

from plugin_runtime.scheduler.lanes import LANE_SLICE, Execute, Scheduler, Step
from plugin_runtime.scheduler.queue import Head, Lane, RunQueue, StoreRunQueue, Taken

__all__ = ["LANE_SLICE", "Execute", "Head", "Lane", "RunQueue", "Scheduler", "Step", "StoreRunQueue", "Taken"]
