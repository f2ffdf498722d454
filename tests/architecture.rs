//! The host's module graph has no cycle, and the leaves stay leaves.
//!
//! Reads `host/src` with `syn` (the parser rustc's proc macros use) and
//! collects every `crate::<module>` a top-level module names outside its
//! `#[cfg(test)]` items. A cycle makes every stage in it depend on every
//! other: a change anywhere rebuilds and can break all of them, and no part
//! can move into a crate of its own. This test names the cycle, and the
//! file behind each of its edges, when one appears.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// module → (module it names → a file where it does)
type Graph = BTreeMap<String, BTreeMap<String, PathBuf>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Top-level modules: `src/x.rs` and `src/x/`, not the crate roots.
fn modules() -> BTreeMap<String, Vec<PathBuf>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(src()).expect("host/src is readable") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        if path.is_dir() {
            out.insert(name, rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main" {
            out.insert(name, vec![path]);
        }
    }
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a module directory is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// Collects the first segment after `crate::` in paths and `use` trees.
#[derive(Default)]
struct Names(BTreeSet<String>);

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && a.parse_args::<syn::Meta>().is_ok_and(|m| m.path().is_ident("test")))
}

impl<'ast> Visit<'ast> for Names {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Impl(i) => &i.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_test_only(attrs) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let mut segments = path.segments.iter();
        if let (Some(first), Some(second)) = (segments.next(), segments.next())
            && first.ident == "crate"
        {
            self.0.insert(second.ident.to_string());
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        if let syn::UseTree::Path(p) = &item.tree
            && p.ident == "crate"
        {
            self.use_tree(&p.tree);
        }
    }
}

impl Names {
    fn use_tree(&mut self, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                self.0.insert(p.ident.to_string());
            }
            syn::UseTree::Name(n) => {
                self.0.insert(n.ident.to_string());
            }
            syn::UseTree::Rename(r) => {
                self.0.insert(r.ident.to_string());
            }
            syn::UseTree::Group(g) => g.items.iter().for_each(|t| self.use_tree(t)),
            syn::UseTree::Glob(_) => {}
        }
    }
}

fn graph() -> Graph {
    let modules = modules();
    let mut graph = Graph::new();
    for (module, files) in &modules {
        let edges = graph.entry(module.clone()).or_default();
        for file in files {
            let text = std::fs::read_to_string(file).expect("a source file is readable");
            let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let mut names = Names::default();
            names.visit_file(&parsed);
            for name in names.0 {
                if name != *module && modules.contains_key(&name) {
                    edges.entry(name).or_insert_with(|| file.clone());
                }
            }
        }
    }
    graph
}

/// A cycle, if the graph has one (depth-first search with colours).
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(node: &str, graph: &Graph, done: &mut BTreeSet<String>, stack: &mut Vec<String>) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|e| e.keys()) {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut done, &mut Vec::new()))
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = graph();
    assert!(graph.len() > 10, "expected the host's modules, found {:?}", graph.keys());
    if let Some(cycle) = find_cycle(&graph) {
        let edges: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("  {} -> {} (in {})", w[0], w[1], graph[&w[0]][&w[1]].display()))
            .collect();
        panic!("the host's modules import each other in a circle:\n{}", edges.join("\n"));
    }
}

#[test]
fn the_leaves_stay_leaves() {
    let graph = graph();
    // What every stage shares must not depend on any stage. (The store is
    // a crate of its own, `switchboard-store`: cargo keeps it a leaf.)
    let allowed: &[(&str, &[&str])] =
        &[("clock", &[]), ("config", &[]), ("metrics", &[]), ("phone", &[]), ("bsuid", &[]), ("model", &["clock"])];
    for (leaf, may_use) in allowed {
        let uses: Vec<&String> = graph[*leaf].keys().filter(|m| !may_use.contains(&m.as_str())).collect();
        assert!(uses.is_empty(), "`{leaf}` is a leaf but uses {uses:?}");
    }
}

/// The check itself can fail: a graph with a cycle is reported as one.
#[test]
fn a_cycle_is_found() {
    let mut graph = Graph::new();
    let edge = |to: &str| BTreeMap::from([(to.to_string(), PathBuf::from("x.rs"))]);
    graph.insert("a".into(), edge("b"));
    graph.insert("b".into(), edge("c"));
    graph.insert("c".into(), edge("a"));
    assert_eq!(find_cycle(&graph), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
    graph.insert("c".into(), BTreeMap::new());
    assert_eq!(find_cycle(&graph), None);
}

/// The longest a function may be: one you can see whole.
const MAX_FUNCTION_LINES: usize = 60;

/// `(lines, name)` of each function in `text` outside its `#[cfg(test)]`
/// module, found from rustfmt's layout (CI checks it): a body ends at the
/// first line that is the signature's indentation and a closing brace.
fn function_lengths(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let signature = ["pub fn ", "pub(crate) fn ", "pub(super) fn ", "fn ", "pub async fn ", "async fn "]
            .iter()
            .find_map(|p| trimmed.strip_prefix(p));
        let Some(rest) = signature else { continue };
        if line.trim_end().ends_with(';') {
            continue;
        }
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let close = format!("{indent}}}");
        if let Some(end) =
            lines[i + 1..].iter().position(|l| l.trim_end() == close || l.starts_with(&format!("{close})")))
        {
            out.push((end + 2, name));
        }
    }
    out
}

#[test]
fn no_function_is_longer_than_one_screen() {
    let mut long = Vec::new();
    let mut seen = 0;
    for files in modules().values() {
        for file in files {
            let text = std::fs::read_to_string(file).expect("a source file is readable");
            for (n, name) in function_lengths(&text) {
                seen += 1;
                if n > MAX_FUNCTION_LINES {
                    long.push(format!("  {name} in {}: {n} lines", file.display()));
                }
            }
        }
    }
    assert!(seen > 500, "expected the host's functions, found {seen}");
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines (split them into named steps):\n{}",
        long.join("\n")
    );
}

/// The measure itself: a long function is found, a short one passes, and
/// test modules are not counted.
#[test]
fn function_lengths_are_measured() {
    let body = |n: usize| "        x();\n".repeat(n);
    let text = format!(
        "fn short() {{\n{}}}\n\n    pub(crate) fn long(a: u8) -> u8 {{\n{}    }}\n#[cfg(test)]\nmod tests {{\n    fn ignored() {{\n{}    }}\n}}\n",
        body(3),
        body(70),
        body(100)
    );
    assert_eq!(function_lengths(&text), vec![(5, "short".to_string()), (72, "long".to_string())]);
}
