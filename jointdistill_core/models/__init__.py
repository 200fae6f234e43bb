"""Networks: the multi-task student, single-task teachers, external (file) teachers."""
