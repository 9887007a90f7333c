"""CurvesPlotter writes non-blank images of the requested size."""

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

from alf.utils._plot_tb_plotter import scale_and_align_x
from alf.utils.plot_tb_curves import CurvesPlotter, MeanCurve


def curve(x0, x1, name, shift=0.0):
    x = np.linspace(x0, x1, 30)
    ys = [np.sin(x / 10) + shift + 0.1 * i for i in range(3)]
    return MeanCurve.from_curves(x, ys, name=name)


def assert_image(path, width, height):
    img = mpimg.imread(path)
    assert img.shape[:2] == (height, width)
    rgb = img[..., :3]
    assert rgb.std() > 0.01  # not blank
    return img


def test_png_of_requested_size_and_not_blank(tmp_path):
    path = tmp_path / "a.png"
    fig = CurvesPlotter(
        [curve(0, 100, "A"), curve(0, 100, "B", 1)],
        figsize=(4, 3),
        title="t",
        x_label="x",
        y_label="y",
    ).plot(str(path), dpi=50)
    assert_image(str(path), 200, 150)
    assert not plt.fignum_exists(fig.number)  # closed


def test_every_option(tmp_path):
    curves = [curve(0, 100, "A"), curve(20, 80, "B", 1), curve(100, 200, "C", 2)]
    p = CurvesPlotter(
        curves,
        y_clipping=(-1, 2),
        x_range=(0, 10),
        y_range=(-2, 3),
        x_ticks=[0, 5, 10],
        x_label="x",
        y_label="y",
        x_scaled_and_aligned=True,
        figsize=(5, 4),
        dpi=80,
        linestyle=["-", "--", ":"],
        linewidth=1,
        std_alpha=0.5,
        colors=["red", "green", "blue"],
        markers=["o", None, "x"],
        bg_color="#fafafa",
        grid_color="black",
        plot_mean_only=False,
        legend_kwargs={"loc": "upper left"},
        title="all",
    )
    fig = p.plot(str(tmp_path / "b.png"), dpi=40, close_fig=False)
    try:
        ax = fig.axes[0]
        assert ax.get_xlim() == (0, 10) and ax.get_ylim() == (-2, 3)
        assert list(ax.get_xticks()) == [0, 5, 10]
        lines = ax.get_lines()
        assert [ln.get_linestyle() for ln in lines] == ["-", "--", ":"]
        # Scaled and aligned: (0,100),(20,80),(100,200) -> (0,5),(1,4),(5,10).
        assert [(ln.get_xdata()[0], ln.get_xdata()[-1]) for ln in lines] == [
            pytest.approx((0, 5)),
            pytest.approx((1, 4)),
            pytest.approx((5, 10)),
        ]
        assert max(ln.get_ydata().max() for ln in lines) <= 2  # clipped
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A", "B", "C"]
        assert ax.get_title() == "all" and len(ax.collections) == 3
    finally:
        plt.close(fig)
    assert_image(str(tmp_path / "b.png"), 200, 160)


def test_scale_and_align_example_from_the_reference():
    xs = [np.array([0.0, 100.0]), np.array([20.0, 80.0]), np.array([100.0, 200.0])]
    out = scale_and_align_x(xs, (0, 1))
    np.testing.assert_allclose(np.array(out), [[0, 0.5], [0.1, 0.4], [0.5, 1]])


def test_mean_only_no_legend_and_vector_formats(tmp_path):
    p = CurvesPlotter(curve(0, 1, "A"), plot_mean_only=True, legend_kwargs=None)
    fig = p.plot(str(tmp_path / "c.svg"), close_fig=False)
    assert fig.axes[0].get_legend() is None and len(fig.axes[0].collections) == 0
    plt.close(fig)
    assert (tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")
    p.plot(str(tmp_path / "c.pdf"))
    assert (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")
    p.plot(str(tmp_path / "t.png"), dpi=20, transparent=True)
    assert mpimg.imread(str(tmp_path / "t.png"))[0, 0, 3] == 0  # transparent corner


def test_default_colors_cycle_over_ten(tmp_path):
    curves = [curve(0, 1, str(i), i) for i in range(11)]
    fig = CurvesPlotter(curves).plot(str(tmp_path / "d.png"), dpi=20, close_fig=False)
    colors = [ln.get_color() for ln in fig.axes[0].get_lines()]
    plt.close(fig)
    assert len(set(colors[:10])) == 10 and colors[10] == colors[0]


def test_bad_arguments():
    c = curve(0, 1, "A")
    with pytest.raises(ValueError, match="at least one MeanCurve"):
        CurvesPlotter([])
    with pytest.raises(TypeError, match=r"mean_curves\[1\] must be a MeanCurve"):
        CurvesPlotter([c, "b"])
    with pytest.raises(ValueError, match="colors must give one entry per curve"):
        CurvesPlotter([c, c], colors=["red"])
    with pytest.raises(ValueError, match="y_range must have low < high"):
        CurvesPlotter(c, y_range=(1, 0))
    with pytest.raises(ValueError, match="figsize"):
        CurvesPlotter(c, figsize=(0, 3))


def test_bad_arguments_are_named_before_drawing(tmp_path):
    c = curve(0, 1, "A")
    inf, nan = float("inf"), float("nan")
    cases = [
        ({"x_range": (0, inf), "x_scaled_and_aligned": True}, ValueError, "x_range must be finite"),
        ({"y_range": (-inf, 1)}, ValueError, "y_range must be finite"),
        ({"dpi": nan}, ValueError, "dpi must be a positive number; got nan"),
        ({"dpi": "100"}, ValueError, "dpi must be a positive number; got '100'"),
        ({"std_alpha": "a"}, ValueError, "std_alpha must be a number in \\[0, 1\\]; got 'a'"),
        ({"linewidth": -1}, ValueError, "linewidth must be a number >= 0; got -1"),
        ({"x_ticks": ["a"]}, ValueError, "x_ticks must be a list of numbers; got \\['a'\\]"),
        ({"x_ticks": 5}, ValueError, "x_ticks must be a list of numbers; got 5"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            CurvesPlotter(c, **kwargs)
    bad = c._replace(min_y=c.min_y[:-1])
    with pytest.raises(
        ValueError, match=r"mean_curves\[1\] \('A'\): min_y has shape \(29,\), x \(30,\)"
    ):
        CurvesPlotter([c, bad])
    with pytest.raises(ValueError, match="dpi must be a positive number; got nan"):
        CurvesPlotter(c).plot(str(tmp_path / "x.png"), dpi=nan)
    assert not (tmp_path / "x.png").exists()


def test_one_sided_y_clipping(tmp_path):
    c = curve(0, 100, "A")
    fig = CurvesPlotter(c, y_clipping=(0.5, float("inf"))).plot(
        str(tmp_path / "c.png"), dpi=20, close_fig=False
    )
    y = fig.axes[0].get_lines()[0].get_ydata()
    plt.close(fig)
    np.testing.assert_allclose(y, np.maximum(c.y, 0.5))
