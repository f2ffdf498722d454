//! The identity evaluation set (`tests/data/identity-eval.csv`): pairs of
//! phone numbers as people, CRMs and WhatsApp write them — national and
//! international forms, `00` and `+`, punctuation, extensions, Brazilian
//! numbers without the ninth digit, Mexican `521`, Argentine `549` and `15` —
//! plus look-alike numbers of different people. Prints precision and recall
//! of "same person"; fails below 0.99 precision or 0.98 recall.
//!
//! `cargo test --test identity_eval -- --nocapture` shows the figures.

mod support;

use switchboard::phone::{Phone, normalize, normalize_wa_id};

fn parse(text: &str, region: &str) -> Option<Phone> {
    if region.is_empty() { normalize_wa_id(text).ok() } else { normalize(text, region).ok() }
}

#[test]
fn matching_precision_and_recall_on_the_evaluation_set() {
    let path = support::workspace_root().join("tests/data/identity-eval.csv");
    let mut reader = csv::Reader::from_path(&path).expect("the evaluation set");
    let (mut tp, mut fp, mut fn_, mut tn) = (0, 0, 0, 0);
    let mut mistakes = Vec::new();
    for row in reader.records() {
        let row = row.expect("a row");
        let (a, ra, b, rb, same) = (&row[0], &row[1], &row[2], &row[3], &row[4] == "1");
        let predicted = match (parse(a, ra), parse(b, rb)) {
            (Some(x), Some(y)) => x.match_key() == y.match_key(),
            _ => false,
        };
        match (predicted, same) {
            (true, true) => tp += 1,
            (true, false) => {
                fp += 1;
                mistakes.push(format!("merged different people: {a} ({ra}) / {b} ({rb})"));
            }
            (false, true) => {
                fn_ += 1;
                mistakes.push(format!("split one person: {a} ({ra}) / {b} ({rb})"));
            }
            (false, false) => tn += 1,
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    eprintln!(
        "identity evaluation: {} pairs ({} same person); precision {precision:.4}, recall {recall:.4} (tp {tp}, fp {fp}, fn {fn_}, tn {tn})",
        tp + fp + fn_ + tn,
        tp + fn_
    );
    for m in &mistakes {
        eprintln!("  {m}");
    }
    assert!(precision >= 0.99, "precision {precision:.4} < 0.99");
    assert!(recall >= 0.98, "recall {recall:.4} < 0.98");
}
