//! Reports the context it was given, as JSON in the decision's reason, so
//! tests can check what the host told the plugin. Replies with a template
//! when the 24-hour window is closed, with text when it is open.
use switchboard_plugin::router::*;

struct Echo;

impl Router for Echo {
    fn route(input: Input) -> Result<Decision, String> {
        let c = &input.context;
        let opt = |v: Option<i64>| v.map_or("null".to_string(), |v| v.to_string());
        let history: Vec<String> =
            c.conversation.history.iter().map(|m| format!("{:?}", m.text.clone().unwrap_or_default())).collect();
        let reason = format!(
            concat!(
                "{{\"tenant\":{:?},\"now\":{},\"weekday\":{},\"minute\":{},\"offset\":{},",
                "\"window_open\":{},\"closes_at\":{},\"history\":[{}],\"message\":{:?},",
                "\"inbound\":{},\"outbound\":{},\"conversations\":{},\"median_latency\":{},",
                "\"stage\":{:?},\"company\":{:?},\"contact_name\":{:?},\"country\":{:?},\"setting\":{:?}}}"
            ),
            c.tenant,
            c.now,
            c.local_time.weekday,
            c.local_time.minute_of_day,
            c.local_time.utc_offset_minutes,
            c.conversation.window.open,
            opt(c.conversation.window.closes_at),
            history.join(","),
            input.message.text.clone().unwrap_or_default(),
            c.stats.inbound_messages,
            c.stats.outbound_messages,
            c.stats.conversations,
            opt(c.stats.median_reply_latency.map(|v| v as i64)),
            c.deal.as_ref().map(|d| d.stage.clone()).unwrap_or_default(),
            c.company.as_ref().map(|d| d.name.clone()).unwrap_or_default(),
            c.contact.name.clone().unwrap_or_default(),
            c.contact.country.clone().unwrap_or_default(),
            config("echo-setting").unwrap_or_default(),
        );
        let reply = if c.conversation.window.open {
            Reply::Text("echo".into())
        } else {
            Reply::Template(Template {
                name: "follow_up_quote".into(),
                language: "pt_BR".into(),
                parameters: vec!["Ana".into()],
            })
        };
        Ok(Decision::bot(reply, reason))
    }
}

switchboard_plugin::export_router!(Echo);
