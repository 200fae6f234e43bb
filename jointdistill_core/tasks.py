"""The two tasks of every network, teacher and method, in the order every per-task tuple
of the project uses (teacher weights, abilities, history rows)."""

TASKS = ('seg', 'depth')
