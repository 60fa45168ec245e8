"""Staffing: how many agents each interval needs (Erlang C, chat concurrency, email
workload), a forecast from history, and the least-cost shift plan (an integer program).

``erlang``, ``forecast`` and ``schedule`` are sans-IO (plain numbers in, dataclasses out) so
they are checked against published examples and enumeration; ``service`` reads and writes
the database; ``web/staffing.py`` is the planner's page.
"""
