"""Table contracts of a study directory (schema version 1). `probe.store` is the only writer.

study/
  manifest.json          study id, spec, model + weights hash, measures (unit, range), seeds, versions,
                         status ("running" | "complete"), completed parts, schema_version
  latents.npy            base latents [N, *shape(space)] float32, row i = sample_id i
  samples.parquet        SAMPLE_COLUMNS + one float column per measure
  interventions.parquet  INTERVENTION_COLUMNS + per measure: <measure>, d_<measure>
  parts/                 atomically written Parquet parts (interventions-*.parquet), merged on completion
  directions/*.npz       DirectionSet files
  effects.parquet        EFFECT_COLUMNS
  correlations.parquet   CORRELATION_COLUMNS
  controlling.parquet    CONTROLLING_COLUMNS
  embedding.parquet      EMBEDDING_COLUMNS
  evaluation.parquet     EVALUATION_COLUMNS
  alpha_summary.parquet  ALPHA_SUMMARY_COLUMNS: per (interventions column, target, alpha) mean / sd / CI, written
                         when the study completes; valid while not older than interventions.parquet
  groundtruth.parquet    GROUNDTRUTH_COLUMNS
  edits.parquet          EDIT_COLUMNS: one row per drag or inversion run (`Study.add_edit`)
  edits/                 <run_id>_before.png, <run_id>_after.png of each edits row
"""

from __future__ import annotations

SCHEMA_VERSION = 1

SAMPLE_COLUMNS = {
    "sample_id": "int64",
    "seed": "int64",
    "space": "string",
    "norm": "float64",
    "logp": "float64",
    "chi2_pct": "float64",
}

# target_kind: variable | direction | channel ; target examples: "z[17]", "interfacegan/gender", "b2:c41"
# walk: linear | isodensity | layers | channel | variable | distance ; step: index of alpha in the plan's alpha list
INTERVENTION_COLUMNS = {
    "sample_id": "int64",
    "target_kind": "string",
    "target": "string",
    "method": "string",
    "walk": "string",
    "step": "int64",
    "alpha": "float64",
    "norm": "float64",
    "logp": "float64",
    "dlogp": "float64",
}

EFFECT_COLUMNS = {
    "method": "string",
    "target": "string",
    "measure": "string",
    "slope": "float64",
    "slope_lo": "float64",
    "slope_hi": "float64",
    "r2": "float64",
    "p": "float64",
    "q": "float64",
    "n": "int64",
}

CORRELATION_COLUMNS = {
    "variable": "string",
    "measure": "string",
    "r": "float64",
    "p": "float64",
    "q": "float64",
    "n": "int64",
}

CONTROLLING_COLUMNS = {
    "measure": "string",
    "rank": "int64",
    "target": "string",
    "effect": "float64",
    "q": "float64",
    "source": "string",
}

EMBEDDING_COLUMNS = {
    "point_id": "int64",
    "kind": "string",
    "sample_id": "int64",
    "target": "string",
    "alpha": "float64",
    "x": "float64",
    "y": "float64",
}

# per (value, target, alpha) of the interventions (probe.query.write_alpha_summary): value is the column
# summarised (d_<measure>, dlogp, logp, norm); n finite rows, their mean, sd (0 when n = 1) and t CI [lo, hi]
ALPHA_SUMMARY_COLUMNS = {
    "target": "string",
    "target_kind": "string",
    "method": "string",
    "walk": "string",
    "value": "string",
    "alpha": "float64",
    "n": "int64",
    "mean": "float64",
    "sd": "float64",
    "lo": "float64",
    "hi": "float64",
}

# per direction, from the engine's tables (probe.directions.evaluate): how specific and density-safe each walk is
EVALUATION_COLUMNS = {
    "method": "string",
    "target": "string",
    "measure": "string",
    "slope": "float64",
    "specificity": "float64",
    "dlogp_abs_mean": "float64",
    "dlogp_abs_max": "float64",
}

TABLES = (
    "samples",
    "interventions",
    "effects",
    "correlations",
    "controlling",
    "embedding",
    "evaluation",
    "groundtruth",
    "edits",
)

# ground truth: per (method, direction target, factor measure) from probe.directions.groundtruth;
# kind slope | class (categorical factor: slope of P(class c) per unit alpha, the class that moves most),
# importance = |effect| / spread
GROUNDTRUTH_COLUMNS = {
    "method": "string",
    "target": "string",
    "measure": "string",
    "kind": "string",
    "effect": "float64",
    "spread": "float64",
    "importance": "float64",
    "row_share": "float64",
    "col_share": "float64",
    "is_top": "bool",
    "purity": "float64",
    "disentanglement": "float64",
    "weight": "float64",
}

# One row per drag or inversion run, written by `Study.add_edit` (the images first, then the table, under the lock).
# kind: drag | invert ; method: draggan | freedrag | ... for drags, the inversion's name (e.g. "invert") otherwise
# site: feature site (None when the method uses none) ; space: z | w | ws of the edited latent ; steps: steps run
# seed: seed of the sampled latent (None when a latent file or an image was edited) ; sample_id: study row edited
# (None when not a study sample) ; points: JSON text {"handles": [[x, y], ...], "targets": [...], "final": [...]}
# in pixels of the model's image (None for inversions) ; handle_dist_px: mean final handle-to-target distance
# outside_change: mean |after - before| outside the edit mask ; psnr: inversion PSNR in dB (peak 2)
# quality: JSON text of further named scores, e.g. {"drift_age": 0.4} (measure drift per measure), "{}" when none
# params: JSON text of the method's parameters ; status: ok (ran to the end) | degraded (ran to the end, missed
# its goal: handles short of their targets, or quality flagged) | stopped (the user stopped it)
# created: UTC ISO 8601 time ; before / after: image file names relative to the study ("edits/<run_id>_before.png")
EDIT_KINDS = ("drag", "invert")
EDIT_STATUSES = ("ok", "degraded", "stopped")
EDIT_COLUMNS = {
    "run_id": "string",
    "kind": "string",
    "method": "string",
    "model": "string",
    "site": "string",
    "space": "string",
    "steps": "int64",
    "seed": "Int64",
    "sample_id": "Int64",
    "points": "string",
    "handle_dist_px": "float64",
    "outside_change": "float64",
    "psnr": "float64",
    "quality": "string",
    "params": "string",
    "status": "string",
    "seconds": "float64",
    "created": "string",
    "before": "string",
    "after": "string",
}
