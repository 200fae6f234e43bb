"""Datasets. Every source yields the same sample type, see `jointdistill_core.data.sample`."""
