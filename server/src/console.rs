//! The command centre's web console (监督指挥, docs/console.md): its files, embedded in
//! the binary so that a city intranet with no internet serves it whole, and its one
//! setting, the base-map tile URL. The HTTP side (pages, the cookie session, CSRF) is
//! `api/console.rs`; the console calls the same JSON API as everyone else.

/// One embedded file of the console.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Its path under `/console/`.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

macro_rules! assets {
    ($( $path:literal => $type:literal ),* $(,)?) => {
        &[$( Asset {
            path: $path,
            content_type: $type,
            bytes: include_bytes!(concat!("../console/", $path)),
        } ),*]
    };
}

/// Every file of the console: plain ES modules and CSS, no build step (what is here is
/// what the browser runs), and Leaflet vendored with its licence.
pub const ASSETS: &[Asset] = assets![
    "index.html" => "text/html; charset=utf-8",
    "console.css" => "text/css; charset=utf-8",
    "errors.js" => "text/javascript; charset=utf-8",
    "app.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "i18n.js" => "text/javascript; charset=utf-8",
    "map.js" => "text/javascript; charset=utf-8",
    "cases.js" => "text/javascript; charset=utf-8",
    "patrol.js" => "text/javascript; charset=utf-8",
    "hotline.js" => "text/javascript; charset=utf-8",
    "assessment.js" => "text/javascript; charset=utf-8",
    "vendor/leaflet/leaflet-src.esm.js" => "text/javascript; charset=utf-8",
    "vendor/leaflet/leaflet.css" => "text/css; charset=utf-8",
    "vendor/leaflet/LICENSE" => "text/plain; charset=utf-8",
];

/// The embedded file at `path` (under `/console/`).
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The console's settings.
#[derive(Debug, Clone, Default)]
pub struct ConsoleSettings {
    /// A base-map tile URL template (`WANGGE_CONSOLE_TILES`: `{z}`, `{x}`, `{y}`, and
    /// `{s}` for subdomains a–d), in GCJ-02 like the grids. `None`: the grids alone are
    /// the map (a closed intranet has no tile server unless the city runs one).
    pub tiles: Option<String>,
    /// The origin the tiles come from, for the Content-Security-Policy's `img-src`.
    tiles_source: Option<String>,
    /// The server speaks HTTPS itself (`WANGGE_TLS_CERT`): cookies get `Secure`.
    pub https: bool,
}

/// A `WANGGE_CONSOLE_TILES` value that will not do.
#[derive(Debug, thiserror::Error)]
#[error("WANGGE_CONSOLE_TILES={value:?}: {reason}")]
pub struct TilesError {
    value: String,
    reason: &'static str,
}

impl ConsoleSettings {
    /// The settings with tile URL `tiles` (checked: `http(s)://host/…{z}…{x}…{y}…`).
    pub fn with_tiles(tiles: Option<&str>) -> Result<ConsoleSettings, TilesError> {
        let Some(value) = tiles.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(ConsoleSettings::default());
        };
        let refuse = |reason| TilesError {
            value: value.to_owned(),
            reason,
        };
        let (scheme, rest) = value
            .split_once("://")
            .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
            .ok_or_else(|| refuse("not an http:// or https:// URL"))?;
        if !["{z}", "{x}", "{y}"].iter().all(|p| value.contains(p)) {
            return Err(refuse("a tile URL names {z}, {x} and {y}"));
        }
        // Characters that would end the CSP directive or the header are refused.
        if value
            .bytes()
            // (0x22 is the double quote, written so to keep this file's quotes paired
            // for tests/tests/operations_doc.rs, which reads the settings from them.)
            .any(|b| b.is_ascii_control() || matches!(b, b' ' | b';' | b',' | b'\'' | b'\x22'))
        {
            return Err(refuse(
                "spaces, quotes, commas and semicolons are not allowed",
            ));
        }
        let host = rest.split('/').next().unwrap_or("");
        // `{s}` picks a subdomain: the policy allows the host's parent domain's
        // subdomains (CSP wildcards stand for whole leftmost labels only).
        let host = match host.split_once('.') {
            Some((first, parent)) if first.contains("{s}") => format!("*.{parent}"),
            _ if host.contains('{') || host.is_empty() => {
                return Err(refuse("the host may hold {s} in its first label only"));
            }
            _ => host.to_owned(),
        };
        Ok(ConsoleSettings {
            tiles: Some(value.to_owned()),
            tiles_source: Some(format!("{scheme}://{host}")),
            https: false,
        })
    }

    /// The same, with cookies marked `Secure` when the server speaks HTTPS itself.
    pub fn serving_https(mut self, https: bool) -> ConsoleSettings {
        self.https = https;
        self
    }

    /// From `WANGGE_CONSOLE_TILES`.
    pub fn from_env() -> Result<ConsoleSettings, TilesError> {
        ConsoleSettings::with_tiles(std::env::var("WANGGE_CONSOLE_TILES").ok().as_deref())
    }

    /// The Content-Security-Policy of every console page: scripts and styles from this
    /// server only (no inline script or style element, no `eval`), images from here,
    /// `data:` (Leaflet's own) and the tile server, connections to here (the API and
    /// the push socket), never framed.
    pub fn content_security_policy(&self) -> String {
        let tiles = self
            .tiles_source
            .as_deref()
            .map(|s| format!(" {s}"))
            .unwrap_or_default();
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:{tiles}; \
             connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'; object-src 'none'"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_and_the_page_loads_no_inline_script() {
        for asset in ASSETS {
            assert!(!asset.bytes.is_empty(), "{} is empty", asset.path);
        }
        let page = std::str::from_utf8(asset("index.html").expect("page").bytes).expect("UTF-8");
        // Every <script> names a file: the policy refuses inline script anyway, this
        // keeps the page from relying on it.
        for (at, _) in page.match_indices("<script") {
            let tag = &page[at..at + page[at..].find('>').expect("tag ends")];
            assert!(tag.contains("src=\"/console/"), "inline script: {tag}");
        }
        assert!(!page.contains("style=\""), "inline style attribute");
    }

    #[test]
    fn tile_urls_are_checked_and_allowed_by_the_policy() {
        let none = ConsoleSettings::with_tiles(None).expect("none");
        assert!(
            none.content_security_policy()
                .contains("img-src 'self' data:;")
        );
        let amap = ConsoleSettings::with_tiles(Some(
            "https://webrd0{s}.is.autonavi.com/appmaptile?style=8&x={x}&y={y}&z={z}",
        ))
        .expect("amap");
        assert!(
            amap.content_security_policy()
                .contains("img-src 'self' data: https://*.is.autonavi.com;")
        );
        let own = ConsoleSettings::with_tiles(Some("http://tiles.city.local:8081/{z}/{x}/{y}.png"))
            .expect("own");
        assert!(
            own.content_security_policy()
                .contains("img-src 'self' data: http://tiles.city.local:8081;")
        );
        for bad in [
            "ftp://x/{z}/{x}/{y}",
            "https://x/{z}/{x}",
            "https://x/{z}/{x}/{y}; script-src *",
            "https://{z}/{x}/{y}",
            "tiles/{z}/{x}/{y}",
        ] {
            assert!(ConsoleSettings::with_tiles(Some(bad)).is_err(), "{bad}");
        }
    }
}
