"""Jobs: long work that persists, reports progress, pauses, resumes after a crash and cancels."""

from sdcore.jobs.job import Job, JobCanceled, JobContext, JobPaused

__all__ = ["Job", "JobCanceled", "JobContext", "JobPaused"]
