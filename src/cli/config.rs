//! `strata config check` (a configuration validated as `strata run` would, summarised) and
//! `strata config list` (every setting with its value and meaning).

use crate::config::BrokerConfig;

/// What a node with `config` would be, one line per fact.
pub fn summary(config: &BrokerConfig) -> String {
    let roles = match (config.broker_role, config.controller_role) {
        (true, true) => "broker and controller",
        (true, false) => "broker",
        _ => "controller",
    };
    let mut out = format!("config ok: node {} ({roles})\n", config.node_id);
    if config.broker_role {
        for listener in &config.kafka_listeners {
            out.push_str(&format!(
                "  Kafka listener    {} {} {} (advertised as {}:{})\n",
                listener.name,
                listener.protocol,
                listener.bind,
                listener.advertised.0,
                listener.advertised.1
            ));
            if let Some(tls) = &listener.tls
                && let Ok(context) =
                    strata_api::security::TlsContext::load(&listener.name, tls.clone())
            {
                let certificate = context.certificate();
                out.push_str(&format!(
                    "    certificate     {}, expires {}\n",
                    certificate.subject, certificate.expires
                ));
            }
        }
        out.push_str(&format!("  admin listener    {}\n", config.admin_listener));
    }
    if config.controller_role {
        out.push_str(&format!(
            "  controller        {}\n",
            config.controller_listener
        ));
    }
    let voters = if config.voters.is_empty() {
        "this node alone".to_owned()
    } else {
        config
            .voters
            .iter()
            .map(|(id, addr)| format!("{id}@{addr}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    out.push_str(&format!("  voters            {voters}\n"));
    if let Some(warning) = super::cluster::even_voters_warning(config.voters.len()) {
        out.push_str(&format!("  warning: {warning}\n"));
    }
    out.push_str(&format!(
        "  data directory    {}\n",
        config.data_dir.display()
    ));
    match &config.remote {
        _ if !config.broker_role => {}
        Some(remote) => out.push_str(&format!("  tiered storage    {}\n", remote.url)),
        None => out.push_str("  tiered storage    off\n"),
    }
    out
}

/// `summary` for scripts: the node's roles, listeners, voters, directory and object store.
pub fn summary_json(config: &BrokerConfig) -> serde_json::Value {
    serde_json::json!({
        "node_id": config.node_id,
        "broker": config.broker_role,
        "controller": config.controller_role,
        "kafka_listeners": config.kafka_listeners.iter().map(|l| serde_json::json!({
            "name": l.name,
            "protocol": l.protocol.name(),
            "bind": l.bind.to_string(),
            "advertised": format!("{}:{}", l.advertised.0, l.advertised.1),
        })).collect::<Vec<_>>(),
        "advertised": format!("{}:{}", config.advertised.0, config.advertised.1),
        "admin_listener": config.admin_listener.to_string(),
        "controller_listener": config.controller_listener.to_string(),
        "voters": config.voters.iter().map(|(id, addr)| format!("{id}@{addr}")).collect::<Vec<_>>(),
        "data_dir": config.data_dir.display().to_string(),
        "tiered_storage": config.remote.as_ref().map(|r| r.url.clone()),
    })
}

/// `list` for scripts: every setting with its value, source and meaning.
pub fn list_json(config: &BrokerConfig) -> serde_json::Value {
    config
        .describe()
        .into_iter()
        .map(|(name, value, explicit, doc)| {
            serde_json::json!({
                "name": name,
                "value": value,
                "source": if explicit { "set" } else { "default" },
                "meaning": doc,
            })
        })
        .collect()
}

/// Every broker-level setting: name, value, whether it was set, and what it means.
pub fn list(config: &BrokerConfig) -> String {
    let rows: Vec<Vec<String>> = config
        .describe()
        .into_iter()
        .map(|(name, value, explicit, doc)| {
            let value = if value.is_empty() {
                "-".to_owned()
            } else {
                value
            };
            let source = if explicit { "set" } else { "default" };
            vec![name, value, source.to_owned(), doc.to_owned()]
        })
        .collect();
    super::table(&["NAME", "VALUE", "SOURCE", "MEANING"], &rows)
}
