"""Predict: Tc of typed or uploaded formulas; a bad row gets its own message, the others still run."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from gdmcd_app import data, inputs, models
from gdmcd_app.components.downloads import csv_download
from gdmcd_app.results_table import sigma_help
from gdmcd_app.shared import get_classifier, get_model, get_training_set, get_trees

BAD_ROW_STYLE = "background-color: #fff0f0"


def _formulas() -> list[str]:
    """The formulas typed, or those of the uploaded CSV (its problems said in one line)."""
    left, right = st.columns([1, 1])
    with left:
        text = st.text_area("Formulas", value="YBa2Cu3O7\nMgB2\nH3S", height=180, key="predict_text")
    with right:
        upload = st.file_uploader(
            f"…or upload a CSV (up to {inputs.MAX_UPLOAD_BYTES // 1_000_000} MB, {inputs.MAX_PREDICT_ROWS:,} rows)",
            type=["csv", "txt"],
            key="predict_upload",
        )
        upload_error = st.empty()
    if upload is not None:
        try:
            return inputs.read_formula_csv(upload.getvalue())
        except ValueError as exc:
            upload_error.error(f"{upload.name}: {exc}")
            return []
    formulas = [line for line in text.splitlines() if line.strip()]
    if len(formulas) > inputs.MAX_PREDICT_ROWS:
        st.error(
            f"{len(formulas):,} lines; the limit is {inputs.MAX_PREDICT_ROWS:,} — only the first ones are predicted"
        )
    return formulas[: inputs.MAX_PREDICT_ROWS]


def _two_decimals(label: str, help: str):
    """A number column shown to two decimals (Tc and σ in K, P(superconductor)), `help` its tooltip."""
    return st.column_config.NumberColumn(label, format="%.2f", help=help)


def _two_part_columns(model, ref: models.ModelRef) -> dict:
    """The columns of the two-part answer (model/hurdle.py), shown when the checkpoint has a classifier."""
    high_p = " (high-P est.)" if ref.high_pressure else ""
    return {
        "p_superconductor": _two_decimals(
            "P(superconductor)",
            "probability that Tc > 0 K: gradient-boosted trees on element statistics fitted on the model's "
            "training rows (COD and hand-built non-superconductors as weaker evidence)",
        ),
        "tc_if_sc_k": _two_decimals(
            f"Tc if superconducting{high_p} (K)",
            "Tc given Tc > 0: the consensus where the network says Tc > 0, the trees' Tc where it says 0 K",
        ),
        "tc_k": _two_decimals(f"expected Tc{high_p} (K)", "P(superconductor) × Tc if superconducting"),
        "tc_std_k": _two_decimals(
            "σ expected (K)",
            "σ of the expected Tc: the mixture of 'no superconductivity' and the Tc if superconducting, whose "
            "σ is the network's widened by half the gap between the network and the trees; empty where unknown",
        ),
        "call": st.column_config.TextColumn(
            "call", help="superconductor / not a superconductor where P(SC) is 90 % sure and the network agrees"
        ),
        "tc_ensemble_k": _two_decimals("Tc network (K)", models.model_caption(ref)),
        "tc_ensemble_std_k": _two_decimals("σ network (K)", sigma_help(model.card)),
    }


def _columns(model, ref: models.ModelRef, two_part: bool = False) -> dict:
    return {
        "row": st.column_config.NumberColumn("row", width="small"),
        "formula": st.column_config.TextColumn("formula"),
        "parsed_formula": st.column_config.TextColumn(
            "scored as", help="the composition the model scored (hydrates summed), as `gdmcd predict` prints it"
        ),
        "tc_k": _two_decimals("Tc, high-P est. (K)" if ref.high_pressure else "Tc (K)", models.model_caption(ref)),
        "tc_std_k": _two_decimals("σ (K)", sigma_help(model.card)),
        "tc_trees_k": _two_decimals("Tc trees (K)", "second opinion: gradient-boosted trees on element statistics"),
        "tc_consensus_k": _two_decimals(
            "Tc consensus (K)",
            "weighted mean of the network and the trees where the network says Tc > 0 (the network's weight "
            "fitted on the model's validation rows, shown on the Model page)",
        ),
        "warning": st.column_config.TextColumn(
            "warning", width="large", help="the training-set checks of `gdmcd predict`: unseen elements, distance"
        ),
        "problem": st.column_config.TextColumn("problem", width="large"),
        **(_two_part_columns(model, ref) if two_part else {}),
    }


def _predictions(model, table: pd.DataFrame) -> None:
    """The predictions table (bad rows marked, with their problem), its message and its download."""
    n_bad = int((table["error"] != "").sum())
    pretty = {c: table[c].map(inputs.pretty_formula) for c in ("formula", "parsed_formula")}
    show = table.assign(**pretty).rename(columns={"error": "problem"})
    if not model.has_uncertainty:  # one member: no spread, σ unknown (never shown as 0)
        show = show.drop(columns=[c for c in ("tc_std_k", "tc_ensemble_std_k") if c in show.columns])
    ref = models.model_ref_of(model)
    st.caption(models.model_caption(ref))
    st.dataframe(
        show.style.apply(lambda r: [BAD_ROW_STYLE if r["problem"] else "" for _ in r], axis=1),
        hide_index=True,
        width="stretch",
        column_config=_columns(model, ref, "p_superconductor" in table.columns),
        key="predict_table",
        placeholder="",
    )
    _warnings(table)
    if n_bad:
        st.error(
            f"{n_bad} of {len(table)} rows could not be read — see the problem column next to each; "
            "the others were predicted."
        )
    csv_download(
        st, "Download predictions (CSV)", table.assign(model=ref.name, model_sha256=ref.sha256), "tc_predictions.csv"
    )


def _warnings(table: pd.DataFrame, limit: int = 10) -> None:
    """The rows with a training-set warning, each with the text `gdmcd predict` prints under it."""
    flagged = table[table["warning"] != ""]
    if not len(flagged):
        return
    lines = [
        f"**{inputs.pretty_formula(f)}**: {w}" for f, w in zip(flagged["formula"], flagged["warning"], strict=True)
    ]
    more = f"\n\n…and {len(lines) - limit} more (see the warning column)" if len(lines) > limit else ""
    st.warning("\n\n".join(lines[:limit]) + more, icon=":material/warning:")


def render() -> None:
    st.title("Predict Tc")
    st.caption(
        "One formula per line (e.g. `YBa2Cu3O7`, `La1.85Sr0.15CuO4`, `H3S`), or a CSV with a `formula` column "
        "(a single column of formulas without a header works too)."
    )
    model, model_error = get_model()
    formulas = _formulas()
    if model_error:
        st.error(f"No Tc model available: {model_error}")
    elif formulas:
        trees, trees_error = get_trees()
        if trees_error:
            st.warning(f"No second opinion from trees: {trees_error}")
        classifier, classifier_error = get_classifier()
        if classifier_error:
            st.warning(f"No P(superconductor): {classifier_error}")
        training, why = get_training_set()
        table = data.predict_formulas(model, formulas, trees, classifier, training)
        _predictions(model, data.with_training_checks(table, training, why))
    else:
        st.info("Type at least one formula.")
