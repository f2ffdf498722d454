//! Returns a decision the host cannot act on: an empty bot reply and too
//! many tags. Prints to stdout, which the host captures as log lines.
use switchboard_plugin::router::*;

struct Invalid;

impl Router for Invalid {
    fn route(_input: Input) -> Result<Decision, String> {
        println!("returning an invalid decision on purpose");
        let mut d = Decision::bot(Reply::Text(String::new()), "empty reply");
        d.tags = (0..40).map(|i| format!("tag-{i}")).collect();
        Ok(d)
    }
}

switchboard_plugin::export_router!(Invalid);
