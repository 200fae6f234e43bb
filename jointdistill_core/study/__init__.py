"""`jointdistill study`: every distillation variant x seed under one budget, tested side by
side, with a results page (docs/study.md)."""
from jointdistill_core.study.config import StudyConfig, load_study_config, select_variants
from jointdistill_core.study.runner import StudyError, collect_finished, run_study

__all__ = ['StudyConfig', 'StudyError', 'collect_finished', 'load_study_config', 'run_study',
           'select_variants']
