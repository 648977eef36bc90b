"""Kili, connected: its projects' labels recorded as events (``records``), through Kili's
official client (``client``, the optional ``kili`` extra). Nothing here is imported unless a
command or a connected project asks for Kili."""
