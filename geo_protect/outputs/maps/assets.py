"""Vendored front-end assets of the risk maps: no CDN at run time.

folium links Leaflet, jQuery, Bootstrap, Font Awesome and its plugins from CDNs. The risk
maps need only Leaflet and Leaflet.markercluster, vendored from npm into
``geo_protect/static/vendor`` by ``scripts/vendor-assets.sh``. :func:`localise` swaps every
CDN link of a map (and of its plugins) for those files, either as relative URLs (the files
are copied next to the maps by :func:`copy_assets`) or inlined into the HTML.
"""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import folium
import geopandas as gpd
from branca.element import Element, Figure

from geo_protect.cities import City
from geo_protect.errors import ConfigError

__all__ = ["VENDOR_DIR", "AssetMode", "copy_assets", "localise", "save_map"]

#: Where ``scripts/vendor-assets.sh`` writes the npm dist files.
VENDOR_DIR = Path(__file__).resolve().parents[2] / "static" / "vendor"

AssetMode = Literal["relative", "inline"]

_JS = ("leaflet/leaflet.js", "leaflet.markercluster/leaflet.markercluster.js")
_CSS = (
    "leaflet/leaflet.css",
    "leaflet.markercluster/MarkerCluster.css",
    "leaflet.markercluster/MarkerCluster.Default.css",
)


def _vendored(rel: str) -> Path:
    path = VENDOR_DIR / rel
    if not path.is_file():
        raise ConfigError(f"{path}: vendored asset missing; run scripts/vendor-assets.sh")
    return path


def _inline_css(rel: str) -> str:
    """A stylesheet with its ``url(images/x.png)`` references turned into data URIs."""
    path = _vendored(rel)

    def data_uri(match: re.Match[str]) -> str:
        image = path.parent / match.group(1)
        if not image.is_file():  # images we do not vendor (marker icons): drop the rule's URL
            return "url()"
        encoded = base64.b64encode(image.read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{encoded})"

    return re.sub(r"url\((images/[^)]+\.png)\)", data_uri, path.read_text(encoding="utf-8"))


def localise(
    fmap: folium.Map, *, mode: AssetMode = "relative", prefix: str = "static/vendor"
) -> None:
    """Replace every CDN asset of ``fmap`` and its children with the vendored files.

    Parameters
    ----------
    fmap : folium.Map
        The map; its children (plugins) are rewritten too.
    mode : {"relative", "inline"}
        ``relative``: link ``{prefix}/...`` (copy the files with :func:`copy_assets`);
        ``inline``: embed the scripts and stylesheets in the HTML (one self-contained file).
    prefix : str
        URL folder of the vendored files, relative to the HTML file.
    """
    if mode not in ("relative", "inline"):
        raise ConfigError(f"asset mode must be 'relative' or 'inline', got {mode!r}")
    stack: list[object] = [fmap]
    while stack:  # no element of the tree may keep a CDN link
        element = stack.pop()
        if hasattr(element, "default_js"):
            element.default_js = []  # type: ignore[attr-defined]
            element.default_css = []  # type: ignore[attr-defined]
        stack.extend(getattr(element, "_children", {}).values())
    figure = fmap.get_root()
    if not isinstance(figure, Figure):
        raise ConfigError("the map must belong to a branca Figure to carry its assets")
    if mode == "relative":
        for rel in _CSS:
            _vendored(rel)
            figure.header.add_child(folium.CssLink(f"{prefix}/{rel}"), name=f"gp_{rel}")
        for rel in _JS:
            _vendored(rel)
            figure.header.add_child(folium.JavascriptLink(f"{prefix}/{rel}"), name=f"gp_{rel}")
        return
    for rel in _CSS:
        figure.header.add_child(Element(f"<style>{_inline_css(rel)}</style>"), name=f"gp_{rel}")
    for rel in _JS:
        code = _vendored(rel).read_text(encoding="utf-8").replace("</script", "<\\/script")
        figure.header.add_child(Element(f"<script>{code}</script>"), name=f"gp_{rel}")


def copy_assets(out_dir: Path, *, prefix: str = "static/vendor") -> Path:
    """Copy the vendored files (with their licences) to ``out_dir/prefix``; return that folder.

    Parameters
    ----------
    out_dir : Path
        Folder of the maps.
    prefix : str
        Folder under ``out_dir`` for the vendored files.

    Returns
    -------
    Path
        ``out_dir/prefix``.
    """
    if not (VENDOR_DIR / _JS[0]).is_file():
        raise ConfigError(f"{VENDOR_DIR}: vendored assets missing; run scripts/vendor-assets.sh")
    target = out_dir / prefix
    shutil.copytree(VENDOR_DIR, target, dirs_exist_ok=True)
    return target


def save_map(
    draw: Callable[..., folium.Map],
    city: City,
    layers: Mapping[str, gpd.GeoDataFrame],
    out_dir: Path,
    options: dict[str, Any],
) -> Path:
    """Draw ``draw(city, layers, **options)`` into ``out_dir/<slug>.html``; with the default
    ``assets="relative"`` the vendored assets are copied beside it (``static/vendor``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    options.setdefault("assets", "relative")
    prefix = options.setdefault("asset_prefix", "static/vendor")
    if options["assets"] == "relative":
        copy_assets(out_dir, prefix=prefix)
    path = out_dir / f"{city.slug}.html"
    draw(city, layers, **options).save(str(path))
    return path
