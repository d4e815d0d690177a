"""Model: the model card — data, split, metrics, parity plot and error by Tc range on the test split."""

from __future__ import annotations

import streamlit as st

from gdmcd_app import data, figures, models
from gdmcd_app.shared import checkpoint_path, get_model
from gdmcd_core.training.metrics import mae_by_range


@st.cache_data(show_spinner="Predicting the test split…", max_entries=4)
def _test_predictions(path: str, sha256: str) -> dict | None:
    model, _ = get_model()
    try:
        return data.test_split_predictions(model)
    except (OSError, ValueError, KeyError):
        return None


def _headline(model, info, card: dict) -> None:
    """The architecture, four numbers, which checkpoint, and what the card does not record."""
    st.markdown(f"**{info.architecture}** — {info.label.split(' · ', 1)[1]}")
    mae_label, mae_value = models.headline_mae(card)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Ensemble members", info.members)
    m2.metric("Parameters per member", f"{info.n_parameters:,}")
    m3.metric(mae_label, mae_value)
    m4.metric("Device", info.device)
    ref = models.model_ref_of(model)
    st.caption(f"Checkpoint `{checkpoint_path()}` · model `{ref.label}` · SHA-256 `{info.sha256[:16]}…`")
    if ref.high_pressure:
        st.info(models.HIGH_PRESSURE_NOTE[0].upper() + models.HIGH_PRESSURE_NOTE[1:] + ".")
    missing = models.missing_card_fields(card)
    if missing:
        st.caption(
            f"Not recorded in this model's card: {', '.join(missing)} (the card was written by an earlier version of "
            "the training code; nothing is filled in by guesswork)."
        )
    if card.get("complete") is False:
        st.info(
            f"Training still in progress: {card.get('n_members', '?')} of {card.get('members_planned', '?')} "
            "ensemble members done."
        )


def _metrics(card: dict) -> None:
    st.subheader("Test metrics")
    metrics = data.metrics_table(card, models.trees_card(checkpoint_path()))
    if len(metrics):
        st.dataframe(metrics, hide_index=True, width="stretch", key="model_metrics")
    else:
        st.info("The card records no test metrics.")


def _data_and_split(card: dict) -> None:
    st.subheader("Data and split")
    data_cfg = card.get("data_config", {})
    counts = card.get("dataset_counts", {})
    st.markdown(
        f"- split: **{data_cfg.get('split', models.NOT_RECORDED)}** (seed {data_cfg.get('split_seed', '?')}), "
        f"fractions train/val/test {data_cfg.get('fractions', '?')}\n"
        f"- non-superconductors from COD: **{'yes' if data_cfg.get('include_cod', True) else 'no'}**\n"
        f"- {models.training_summary(card)}"
    )
    if counts:
        st.dataframe(models.dataset_counts_table(counts), hide_index=True, key="model_counts", placeholder="")
    else:
        st.caption(f"Dataset counts: {models.NOT_RECORDED} in this card.")


def _test_plots(model, sha256: str) -> None:
    """The parity plot and the error by Tc range on the SuperCon test split."""
    preds = _test_predictions(str(checkpoint_path()), sha256)
    if preds is None:
        st.warning("The test split could not be rebuilt (data files not found), so the parity plot is not shown.")
        return
    sc = preds["is_supercon"]
    p1, p2 = st.columns([3, 2])
    std = preds["tc_std_k"][sc] if model.has_uncertainty else None
    p1.plotly_chart(
        figures.parity_plot(preds["tc_true_k"][sc], preds["tc_pred_k"][sc], std),
        key="model_parity",
        config=figures.PLOT_CONFIG,
    )
    rows = mae_by_range(preds["tc_true_k"][sc].astype(float), preds["tc_pred_k"][sc].astype(float))
    p2.plotly_chart(figures.error_by_range(rows), key="model_error_range", config=figures.PLOT_CONFIG)
    st.caption(f"{int(sc.sum()):,} SuperCon test compositions (non-superconductors are left out of both plots).")


def render() -> None:
    st.title("Model card")
    model, err = get_model()
    if err:
        st.error(f"No Tc model available: {err}")
        st.stop()
    info = data.describe_model(model)
    card = model.card
    _headline(model, info, card)
    left, right = st.columns(2)
    with left:
        _metrics(card)
    with right:
        _data_and_split(card)
    _test_plots(model, info.sha256)
    with st.expander("Full model card (JSON)"):
        st.json(card, expanded=False)
