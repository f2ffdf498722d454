//! Compiled components on disk, so a restart loads in a millisecond what
//! took tens of milliseconds (or seconds, for JavaScript) to compile.
//!
//! Entries are keyed by the component's sha256 and the engine's
//! compatibility hash: a host upgrade or a config change that alters code
//! generation simply misses the cache and recompiles.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

pub struct CompileCache {
    dir: PathBuf,
    engine_tag: String,
}

impl CompileCache {
    pub fn new(dir: &Path, engine: &Engine) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        CompileCache { dir: dir.to_path_buf(), engine_tag: format!("{:016x}", h.finish()) }
    }

    fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(format!("{hash}-{}.cwasm", self.engine_tag))
    }

    pub fn contains(&self, hash: &str) -> bool {
        self.path(hash).exists()
    }

    /// The cached compilation of `hash`, if present and loadable.
    pub fn load(&self, engine: &Engine, hash: &str) -> Option<Component> {
        let path = self.path(hash);
        if !path.exists() {
            return None;
        }
        // SAFETY: the file was written by `store` below from code this
        // engine compiled; the directory is the host's own. A file that does
        // not match the engine is rejected by wasmtime's header check.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "ignoring unusable compile cache entry");
                None
            }
        }
    }

    /// Saves a compilation; failures only cost a recompile later.
    pub fn store(&self, hash: &str, component: &Component) {
        let result = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let bytes = component.serialize().map_err(|e| std::io::Error::other(format!("{e:#}")))?;
            let tmp = self.dir.join(format!(".{hash}.{}.tmp", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, self.path(hash))
        })();
        if let Err(e) = result {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not write the compile cache");
        }
    }
}
