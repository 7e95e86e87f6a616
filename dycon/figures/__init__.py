"""What each figure of the poster needs, as runs, and the numbers and plots drawn from them.

Besides its tables the poster shows four figures: segmentation overlays ("Lesion and Tumor
segmentation visualization"), training curves ("Loss and dice accuracy on ISLES22 with 10%
labels"), a lesion-size study ("Sensitivity analysis of FeCL loss across different lesion sizes
and distributions") and an "Evolving Grad-CAM visualization". Each has a notebook,
``notebooks/fig_<name>.ipynb`` (``make reproduce FIG=<name>``), that asks :func:`figure_runs`
for its runs, :func:`dycon.experiments.ensure` to train what is missing, and this package for the
numbers (:func:`lesion_numbers`, :func:`curve_numbers`, :func:`gradcam_panels`,
:func:`overlay_cases`) and plots; :func:`save_figure` writes ``results/fig-<name>/``.

Each figure is declared once, as a :class:`Figure` (rows, glue values, table) at the end of its
module; :data:`FIGURES` (``registry``) collects them, and the run list, the CLI's choices and the
committed record are derived from it. Adding a figure is one module plus its notebook.

Every run is in Table 1's setting: its dataset (ISLES'22 when prepared, else isles-sim), 10 %
labeled (the poster's curves say "10% labels"), one run per seed. Rows per figure:

- ``lesion-size``: DyCON, DyCON w/o FeCL (``method.use_fecl=false``), MT;
- ``overlays``: DyCON, MT;
- ``curves``: DyCON (tracked), MT (``train.val_every``);
- ``gradcam``: DyCON (tracked);
- ``frameworks``: MT, MT + DyCON, CPS, CPS + DyCON (``dycon-ct``).

The lesion-size, curve and frameworks figures take every seed (lesions pooled over seeds, one
curve per seed, gains paired over seeds); the Grad-CAM and overlay figures show one run per row,
the first seed's.

*Tracked* adds ``train.val_every = max(1, round(iterations / 10))`` (only where the dataset has a
validation list: ISLES'22 has none and the test list never validates) and
``train.snapshots=[0.1, 0.5, 1.0]``, so the curves' and the Grad-CAM's DyCON are one run. The
untracked DyCON and MT are Table 1's rows at 10 %: run ids are config hashes, so the runs of a
reproduced Table 1 are reused, and the overlays reuse the lesion-size runs.
"""

from ._format import clean, fmt_ci, png_size, slug
from .base import (
    PERCENT,
    REFERENCE,
    SNAPSHOTS,
    TABLE,
    Figure,
    Row,
    by_row,
    has_validation,
    held_out,
    val_every,
)
from .curves import curve_label, curve_numbers
from .frameworks import framework_numbers, plot_frameworks
from .gradcam import gradcam_numbers, gradcam_panels, plot_gradcam, snapshots
from .lesion_size import (
    as_bins,
    empty_rows,
    lesion_numbers,
    lesion_studies,
    plot_lesion_bins,
    plot_lesion_cases,
)
from .overlays import overlay_cases, overlay_numbers
from .record import (
    committed_record,
    glue_values,
    resave,
    save_figure,
    to_frame,
    to_html,
    to_markdown,
)
from .registry import FIGURES, check_figure, figure, figure_runs

__all__ = [
    "FIGURES",
    "PERCENT",
    "REFERENCE",
    "SNAPSHOTS",
    "TABLE",
    "Figure",
    "Row",
    "as_bins",
    "by_row",
    "check_figure",
    "clean",
    "committed_record",
    "curve_label",
    "curve_numbers",
    "empty_rows",
    "figure",
    "figure_runs",
    "fmt_ci",
    "framework_numbers",
    "glue_values",
    "gradcam_numbers",
    "gradcam_panels",
    "has_validation",
    "held_out",
    "lesion_numbers",
    "lesion_studies",
    "overlay_cases",
    "overlay_numbers",
    "plot_frameworks",
    "plot_gradcam",
    "plot_lesion_bins",
    "plot_lesion_cases",
    "png_size",
    "resave",
    "save_figure",
    "slug",
    "snapshots",
    "to_frame",
    "to_html",
    "to_markdown",
    "val_every",
]
