"""Run records: the versioned schema and environment (``schema``), validation of records read from disk
(``checks``), the atomic store of run.json / samples.jsonl (``store``) and user-named output files
(``output_files``)."""

from llmbench.records.schema import (  # noqa: F401
    RUN_FILE,
    SAMPLES_FILE,
    SCHEMA_VERSION,
    ResultRow,
    RunRecord,
    capture_environment,
    create_run_dir,
    new_run_id,
    now_iso,
)
