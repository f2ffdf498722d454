//! What a component is, read from its bytes without compiling it.
//!
//! Compiling a large component (JavaScript, Python) takes seconds and tens
//! of MB; refusing it afterwards for what its import and export sections
//! say wastes both. So the cheap checks come first: the component-model
//! header, the top-level imports (nothing beyond the allowed interfaces:
//! no sockets, HTTP or other host access) and exports (exactly one
//! `switchboard:plugin` world, of a WIT version this host serves). Nested
//! core modules and components are skipped: only what the component as a
//! whole imports and exports is its contract.

use wasmparser::{Parser, Payload};

use super::{PluginError, World};

/// Import namespaces a plugin may use. WASI is linked with no capability
/// granted (see `sandbox`); sockets and HTTP are refused here.
pub const ALLOWED_IMPORTS: &[&str] =
    &["switchboard:plugin/", "wasi:io/", "wasi:cli/", "wasi:clocks/", "wasi:random/", "wasi:filesystem/"];

/// The world a component implements and the WIT version it targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub world: World,
    pub wit_version: String,
}

/// Reads `wasm`'s header, imports and exports.
pub fn inspect(wasm: &[u8], served: &[&str]) -> Result<Shape, PluginError> {
    if !is_component(wasm) {
        return Err(PluginError::NotAComponent(
            "the file does not start with the component-model header; build with \
             `cargo build --target wasm32-wasip2` (or componentize your module)"
                .into(),
        ));
    }
    let (imports, exports) = top_level_names(wasm)?;
    if let Some(name) = imports.iter().find(|n| !ALLOWED_IMPORTS.iter().any(|p| n.starts_with(p))) {
        return Err(PluginError::ForbiddenImport(format!(
            "the component imports `{name}`; plugins may only import {} \
             (no sockets, HTTP or other host access)",
            ALLOWED_IMPORTS.iter().map(|p| format!("{p}*")).collect::<Vec<_>>().join(", ")
        )));
    }
    let mut found = Vec::new();
    for name in &exports {
        let Some(rest) = name.strip_prefix("switchboard:plugin/") else { continue };
        let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
        if let Some(world) = World::ALL.into_iter().find(|w| w.export_interface() == interface) {
            found.push(Shape { world, wit_version: version.to_string() });
        }
    }
    let shape = match found.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(PluginError::WrongWorld(
                "the component exports no switchboard:plugin interface: implement one world \
                 (router exports `routing`, follow-up `following`, feedback `learning`)"
                    .into(),
            ));
        }
        _ => {
            return Err(PluginError::WrongWorld(
                "the component implements more than one world; ship one per component".into(),
            ));
        }
    };
    if !served.contains(&shape.wit_version.as_str()) {
        return Err(PluginError::UnsupportedVersion(format!(
            "the component targets switchboard:plugin@{}; this host serves {}",
            shape.wit_version,
            served.join(", ")
        )));
    }
    Ok(shape)
}

/// The component-model binary header: `\0asm`, version 0x0d, layer 1.
fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}

/// The names the component itself imports and exports.
fn top_level_names(wasm: &[u8]) -> Result<(Vec<String>, Vec<String>), PluginError> {
    let malformed = |e: wasmparser::BinaryReaderError| PluginError::NotAComponent(format!("malformed component: {e}"));
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    // Depth of nested modules and components; 0 is the component itself.
    let mut nested = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(malformed)? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => nested += 1,
            Payload::End(_) if nested > 0 => nested -= 1,
            Payload::End(_) => break,
            Payload::ComponentImportSection(reader) if nested == 0 => {
                for import in reader {
                    imports.push(import.map_err(malformed)?.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if nested == 0 => {
                for export in reader {
                    exports.push(export.map_err(malformed)?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
}

/// `wasm` with a custom section appended: the same code under another
/// sha256 — distinct versions of one plugin, for tests and benchmarks.
pub fn with_custom_section(wasm: &[u8], tag: &str) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"switchboard-tag";
    let mut payload = Vec::new();
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0);
    leb(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_core_module_is_not_a_component() {
        let err = inspect(b"\0asm\x01\0\0\0", &["0.1.0"]).unwrap_err();
        assert!(matches!(err, PluginError::NotAComponent(_)), "{err}");
    }

    #[test]
    fn garbage_after_the_header_is_malformed_not_a_panic() {
        let err = inspect(b"\0asm\x0d\0\x01\0\xff\xff\xff", &["0.1.0"]).unwrap_err();
        assert!(matches!(err, PluginError::NotAComponent(ref m) if m.contains("malformed")), "{err}");
    }
}
