//! `listeners`, `process.roles` and `controller.quorum.voters`: the values with a grammar of
//! their own. Errors are messages; the caller names the key and where it was given.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use strata_api::security::SecurityProtocol;

/// Default controller port: the Kafka port plus this (9093 for 9092).
pub const CONTROLLER_PORT_OFFSET: u16 = 1;
/// Default admin HTTP port: the Kafka port plus this (9644 for 9092).
pub const ADMIN_PORT_OFFSET: u16 = 552;

/// A named listener of `listeners`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Its name, upper-case (`EXTERNAL`).
    pub name: String,
    /// Where it binds.
    pub addr: SocketAddr,
}

/// `listeners`, split: the Kafka listeners in the order given, the controller listener
/// (CONTROLLER) and the admin HTTP API (ADMIN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listeners {
    /// Every listener Kafka clients use.
    pub kafka: Vec<ListenerSpec>,
    /// The controller listener.
    pub controller: SocketAddr,
    /// The admin HTTP listener.
    pub admin: SocketAddr,
}

/// The names `listeners` reserves for Strata's own listeners.
pub const CONTROLLER_NAME: &str = "CONTROLLER";
/// The admin HTTP API's listener name.
pub const ADMIN_NAME: &str = "ADMIN";

/// Parses `listeners`: `NAME://host:port` entries, where a bare `host:port` is the PLAINTEXT
/// listener. CONTROLLER and ADMIN default to the first Kafka listener's host and its port plus
/// [`CONTROLLER_PORT_OFFSET`] and [`ADMIN_PORT_OFFSET`], so that moving the Kafka port moves
/// the whole set (port 0 for all when the Kafka port is 0, so that tests on ephemeral ports
/// never collide).
pub fn parse_listeners(text: &str) -> Result<Listeners, String> {
    let mut kafka: Vec<ListenerSpec> = Vec::new();
    let mut controller = None;
    let mut admin = None;
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, address) = entry.split_once("://").unwrap_or(("PLAINTEXT", entry));
        let name = name.to_ascii_uppercase();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "'{name}' is not a listener name (letters, digits, _ and -)"
            ));
        }
        let addr: SocketAddr = address
            .parse()
            .map_err(|e| format!("'{address}' is not host:port with an IP host: {e}"))?;
        let slot = match name.as_str() {
            CONTROLLER_NAME => &mut controller,
            ADMIN_NAME => &mut admin,
            _ => {
                if kafka.iter().any(|l| l.name == name) {
                    return Err(format!("two {name} listeners"));
                }
                kafka.push(ListenerSpec { name, addr });
                continue;
            }
        };
        if slot.replace(addr).is_some() {
            return Err(format!("two {name} listeners"));
        }
    }
    // A controller-only node may have no Kafka listener, its other two given by name.
    let first = kafka.first().map(|l| l.addr);
    if first.is_none() && controller.is_none() {
        return Err(format!(
            "'{text}' has no Kafka listener (PLAINTEXT://host:port, SSL://…)"
        ));
    }
    let beside = |name: &str, offset: u16| -> Result<SocketAddr, String> {
        let Some(first) = first else {
            return Err(format!(
                "'{text}' has no Kafka listener to place the {name} listener beside: give it with {name}://host:port"
            ));
        };
        if first.port() == 0 {
            return Ok(SocketAddr::new(first.ip(), 0));
        }
        let port = first.port().checked_add(offset).ok_or_else(|| {
            format!(
                "the {name} listener defaults to port {} + {offset}, past 65535: give it with {name}://host:port",
                first.port()
            )
        })?;
        Ok(SocketAddr::new(first.ip(), port))
    };
    let controller = match controller {
        Some(addr) => addr,
        None => beside(CONTROLLER_NAME, CONTROLLER_PORT_OFFSET)?,
    };
    let admin = match admin {
        Some(addr) => addr,
        None => beside(ADMIN_NAME, ADMIN_PORT_OFFSET)?,
    };
    let mut ports: Vec<SocketAddr> = kafka.iter().map(|l| l.addr).collect();
    ports.extend([controller, admin]);
    for (n, a) in ports.iter().enumerate() {
        if a.port() != 0 && ports[n + 1..].iter().any(|b| b == a) {
            return Err(format!("two listeners on {a}"));
        }
    }
    Ok(Listeners {
        kafka,
        controller,
        admin,
    })
}

/// `listener.security.protocol.map`: `NAME:PROTOCOL` pairs. Kafka's four protocol names
/// always map to themselves unless given otherwise.
pub fn parse_protocol_map(text: &str) -> Result<BTreeMap<String, SecurityProtocol>, String> {
    let mut map: BTreeMap<String, SecurityProtocol> = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ]
    .into_iter()
    .map(|p| (p.name().to_owned(), p))
    .collect();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, protocol) = pair
            .split_once(':')
            .ok_or_else(|| format!("'{pair}' is not NAME:PROTOCOL"))?;
        let protocol = SecurityProtocol::parse(protocol.trim()).ok_or_else(|| {
            format!(
                "'{protocol}' is not a security protocol; use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
            )
        })?;
        map.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    Ok(map)
}

/// `advertised.listeners`: `NAME://host:port` per Kafka listener; a bare `host:port` is the
/// first listener's. Names must be listeners.
pub fn parse_advertised(
    text: &str,
    listeners: &[ListenerSpec],
) -> Result<BTreeMap<String, (String, u16)>, String> {
    let mut out = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, address) = match entry.split_once("://") {
            Some((name, address)) => (name.to_ascii_uppercase(), address),
            None => (listeners[0].name.clone(), entry),
        };
        if !listeners.iter().any(|l| l.name == name) {
            return Err(format!(
                "{name} is not one of the Kafka listeners in listeners ({})",
                listeners
                    .iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| format!("'{entry}' is not host:port"))?;
        let port = port
            .parse()
            .map_err(|_| format!("'{port}' is not a port"))?;
        if out
            .insert(
                name.clone(),
                (host.trim_matches(['[', ']']).to_owned(), port),
            )
            .is_some()
        {
            return Err(format!("{name} is advertised twice"));
        }
    }
    Ok(out)
}

/// `process.roles`: (broker, controller).
pub fn parse_roles(text: &str) -> Result<(bool, bool), String> {
    let (mut broker, mut controller) = (false, false);
    for role in text.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        match role {
            "broker" => broker = true,
            "controller" => controller = true,
            other => {
                return Err(format!(
                    "'{other}' is not a role; use broker, controller or both"
                ));
            }
        }
    }
    if !broker && !controller {
        return Err("no role given; use broker, controller or both".into());
    }
    Ok((broker, controller))
}

/// `id@host:port` voter specs, comma-separated.
pub fn parse_voters(text: &str) -> Result<BTreeMap<u64, String>, String> {
    let mut voters = BTreeMap::new();
    for spec in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = spec
            .split_once('@')
            .ok_or_else(|| format!("voter '{spec}' is not id@host:port"))?;
        let id: u64 = id
            .parse()
            .map_err(|_| format!("voter '{spec}': '{id}' is not a node id"))?;
        if !addr.contains(':') {
            return Err(format!("voter '{spec}': '{addr}' is not host:port"));
        }
        if voters.insert(id, addr.to_owned()).is_some() {
            return Err(format!("voter {id} is listed twice"));
        }
    }
    Ok(voters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_the_kafka_port_moves_the_whole_set() {
        let ports = |text: &str| {
            let l = parse_listeners(text).unwrap();
            (l.kafka[0].addr.port(), l.controller.port(), l.admin.port())
        };
        assert_eq!(ports("127.0.0.1:59092"), (59092, 59093, 59644));
        assert_eq!(ports("PLAINTEXT://127.0.0.1:9092"), (9092, 9093, 9644));
        assert_eq!(ports("127.0.0.1:0"), (0, 0, 0));
        assert_eq!(
            ports("127.0.0.1:9192,CONTROLLER://127.0.0.1:9193,ADMIN://127.0.0.1:9744"),
            (9192, 9193, 9744)
        );
        assert!(
            parse_listeners("127.0.0.1:65500")
                .unwrap_err()
                .contains("ADMIN")
        );
        assert!(
            parse_listeners("127.0.0.1:9092,ADMIN://127.0.0.1:9093")
                .unwrap_err()
                .contains("two listeners")
        );
    }

    #[test]
    fn named_listeners_map_to_protocols() {
        let l = parse_listeners(
            "internal://127.0.0.1:9092,EXTERNAL://0.0.0.0:9094,CONTROLLER://127.0.0.1:9093",
        )
        .unwrap();
        let names: Vec<_> = l.kafka.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["INTERNAL", "EXTERNAL"]);
        assert_eq!(l.admin.port(), 9644);
        assert!(
            parse_listeners("SSL://127.0.0.1:1,SSL://127.0.0.1:2")
                .unwrap_err()
                .contains("two SSL")
        );
        // A controller-only node names its two listeners; with one missing, the error says
        // which.
        let controller = parse_listeners("CONTROLLER://0.0.0.0:9093,ADMIN://0.0.0.0:9644").unwrap();
        assert!(controller.kafka.is_empty());
        assert_eq!(
            (controller.controller.port(), controller.admin.port()),
            (9093, 9644)
        );
        assert!(
            parse_listeners("CONTROLLER://127.0.0.1:1")
                .unwrap_err()
                .contains("ADMIN://host:port")
        );
        assert!(
            parse_listeners("ADMIN://127.0.0.1:1")
                .unwrap_err()
                .contains("no Kafka listener")
        );
        let map = parse_protocol_map("INTERNAL:SASL_SSL, external:SSL").unwrap();
        assert_eq!(map["INTERNAL"], SecurityProtocol::SaslSsl);
        assert_eq!(map["EXTERNAL"], SecurityProtocol::Ssl);
        assert_eq!(map["SASL_PLAINTEXT"], SecurityProtocol::SaslPlaintext);
        assert!(
            parse_protocol_map("X:TLS")
                .unwrap_err()
                .contains("not a security protocol")
        );
        let advertised = parse_advertised(
            "EXTERNAL://kafka.example:9094,internal://10.0.0.1:9092",
            &l.kafka,
        )
        .unwrap();
        assert_eq!(advertised["EXTERNAL"], ("kafka.example".to_owned(), 9094));
        assert_eq!(advertised["INTERNAL"], ("10.0.0.1".to_owned(), 9092));
        let bare = parse_advertised("[::1]:19092", &l.kafka).unwrap();
        assert_eq!(bare["INTERNAL"], ("::1".to_owned(), 19092));
        assert!(
            parse_advertised("OTHER://h:1", &l.kafka)
                .unwrap_err()
                .contains("INTERNAL, EXTERNAL")
        );
    }
}
