//! The apt source for Debian's `bookworm-backports`, where the primary QEMU
//! (10.0) comes from: derived from the Debian source already configured on
//! the machine (its mirror, components and keyring), never a hard-coded host.

use std::fs;
use std::path::{Path, PathBuf};

use crate::Result;

/// The suite the primary QEMU is installed from.
pub(crate) const SUITE: &str = "bookworm-backports";

/// The file xtask writes when no backports source is configured.
pub(crate) const SOURCE_FILE: &str = "/etc/apt/sources.list.d/qemukit-bookworm-backports.sources";

const SOURCES_DIR: &str = "/etc/apt/sources.list.d";
const SOURCES_LIST: &str = "/etc/apt/sources.list";

/// One apt source, from either a deb822 stanza or a one-line entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Source {
    types: Vec<String>,
    uris: Vec<String>,
    suites: Vec<String>,
    components: Vec<String>,
    signed_by: Option<String>,
    enabled: bool,
}

impl Source {
    fn is_deb_for(&self, suite: &str) -> bool {
        self.enabled
            && self.types.iter().any(|kind| kind == "deb")
            && self.suites.iter().any(|listed| listed == suite)
    }

    /// The deb822 text of a source like this one for `suite` (binary
    /// packages only).
    fn for_suite(&self, suite: &str) -> String {
        let mut text = format!(
            "# Written by `cargo xtask` (qemukit): QEMU 10.0 comes from {suite}.\n\
             Types: deb\nURIs: {}\nSuites: {suite}\nComponents: {}\n",
            self.uris.join(" "),
            self.components.join(" "),
        );
        if let Some(keyring) = &self.signed_by {
            text.push_str(&format!("Signed-By: {keyring}\n"));
        }
        text
    }
}

/// What the machine's apt configuration says about backports.
#[derive(Debug)]
pub(crate) enum Plan {
    /// A source for the suite is configured already.
    Configured,
    /// None is: this deb822 text, written to [`SOURCE_FILE`], adds one.
    Add(String),
}

/// Reads the machine's apt sources and decides whether backports must be
/// added, and how.
pub(crate) fn plan() -> Result<Plan> {
    let sources = configured_sources()?;
    if sources.iter().any(|source| source.is_deb_for(SUITE)) {
        return Ok(Plan::Configured);
    }
    let debian = sources
        .iter()
        .find(|source| source.is_deb_for("bookworm"))
        .ok_or_else(|| {
            format!(
                "no apt source for Debian `bookworm` is configured (looked in {SOURCES_LIST} and \
                 {SOURCES_DIR}): this machine is not the Debian 12 that qemukit's set-up expects. \
                 Install qemu-system-x86 (QEMU ≥ 7.2) yourself, or add a `bookworm` source"
            )
        })?;
    Ok(Plan::Add(debian.for_suite(SUITE)))
}

/// Whether apt has downloaded the suite's package list (after `apt-get update`).
pub(crate) fn lists_present() -> bool {
    fs::read_dir("/var/lib/apt/lists").is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // Compressed as apt likes: `…_Packages`, `…_Packages.lz4`…
            name.contains(&format!("_dists_{SUITE}_")) && name.contains("_Packages")
        })
    })
}

fn configured_sources() -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    if let Ok(text) = fs::read_to_string(SOURCES_LIST) {
        sources.extend(parse_one_line(&text));
    }
    let mut files: Vec<PathBuf> = match fs::read_dir(SOURCES_DIR) {
        Ok(entries) => entries.flatten().map(|entry| entry.path()).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    for file in files {
        let text = match read_if(&file, "sources").or_else(|| read_if(&file, "list")) {
            Some(Ok(text)) => text,
            Some(Err(err)) => return Err(format!("reading {}: {err}", file.display())),
            None => continue,
        };
        if file.extension().is_some_and(|ext| ext == "sources") {
            sources.extend(parse_deb822(&text));
        } else {
            sources.extend(parse_one_line(&text));
        }
    }
    Ok(sources)
}

fn read_if(file: &Path, extension: &str) -> Option<std::io::Result<String>> {
    (file.extension()? == extension).then(|| fs::read_to_string(file))
}

/// Parses deb822 `.sources` text: stanzas separated by blank lines, `Key:
/// value` fields, continuation lines indented, `#` comments.
fn parse_deb822(text: &str) -> Vec<Source> {
    let mut sources = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut flush = |fields: &mut Vec<(String, String)>| {
        if !fields.is_empty() {
            sources.push(source_from_fields(fields));
            fields.clear();
        }
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut fields);
        } else if line.starts_with('#') {
            continue;
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    flush(&mut fields);
    sources
}

fn source_from_fields(fields: &[(String, String)]) -> Source {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let words = |name: &str| -> Vec<String> {
        field(name)
            .map(|value| value.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    Source {
        types: words("types"),
        uris: words("uris"),
        suites: words("suites"),
        components: words("components"),
        // An inline (multi-line) key cannot be carried over line by line; the
        // new source then relies on the machine's trusted keys.
        signed_by: field("signed-by")
            .filter(|value| !value.contains('\n'))
            .map(str::to_owned),
        enabled: field("enabled").is_none_or(|value| !value.eq_ignore_ascii_case("no")),
    }
}

/// Parses one-line `sources.list` entries: `deb [options] URI suite
/// component…`.
fn parse_one_line(text: &str) -> Vec<Source> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?.trim();
            let (kind, rest) = line.split_once(char::is_whitespace)?;
            if kind != "deb" && kind != "deb-src" {
                return None;
            }
            let rest = rest.trim_start();
            let (options, rest) = match rest.strip_prefix('[') {
                Some(after) => after.split_once(']')?,
                None => ("", rest),
            };
            let mut words = rest.split_whitespace();
            let uri = words.next()?;
            let suite = words.next()?;
            let signed_by = options
                .split_whitespace()
                .find_map(|option| option.strip_prefix("signed-by="))
                .map(str::to_owned);
            Some(Source {
                types: vec![kind.to_owned()],
                uris: vec![uri.to_owned()],
                suites: vec![suite.to_owned()],
                components: words.map(str::to_owned).collect(),
                signed_by,
                enabled: true,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

    #[test]
    fn backports_reuses_the_configured_mirror_components_and_keyring() {
        let sources = parse_deb822(DEB822);
        assert_eq!(sources.len(), 2, "{sources:?}");
        let debian = sources.iter().find(|source| source.is_deb_for("bookworm"));
        assert_eq!(
            debian.map(|source| source.for_suite(SUITE)),
            Some(
                "# Written by `cargo xtask` (qemukit): QEMU 10.0 comes from bookworm-backports.\n\
                 Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm-backports\n\
                 Components: main contrib\n\
                 Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
                    .to_owned()
            )
        );
        assert!(!sources.iter().any(|source| source.is_deb_for(SUITE)));
    }

    #[test]
    fn one_line_entries_and_their_signed_by_option() {
        let sources = parse_one_line(
            "# comment\n\
             deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main non-free\n\
             deb-src http://m.example/debian bookworm main\n\
             deb http://m.example/debian bookworm-backports main # trailing\n",
        );
        assert_eq!(sources.len(), 3, "{sources:?}");
        assert_eq!(sources[0].signed_by.as_deref(), Some("/k.gpg"));
        assert_eq!(sources[0].components, ["main", "non-free"]);
        assert!(sources[0].is_deb_for("bookworm"));
        assert!(
            !sources[1].is_deb_for("bookworm"),
            "deb-src is not a binary source"
        );
        assert!(sources[2].is_deb_for(SUITE));
    }

    #[test]
    fn a_disabled_stanza_does_not_count() {
        let sources = parse_deb822(
            "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm-backports\n\
             Components: main\nEnabled: no\n",
        );
        assert!(!sources.iter().any(|source| source.is_deb_for(SUITE)));
    }
}
