//! The Kafka listeners with their security: protocols, advertised addresses and TLS settings
//! (`ssl.*`, each overridable per listener as `listener.name.<name>.ssl.*`, as in Kafka).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use strata_api::security::sasl::{Mechanism, PlainUsers, SaslConfig};
use strata_api::security::tls::{ClientAuth, PemSource};
use strata_api::security::{PrincipalMapper, SecurityProtocol, TlsSettings};

use super::listeners::{ListenerSpec, parse_advertised, parse_protocol_map};
use super::{ConfigError, Settings};

/// The `ssl.*` and `sasl.*` keys a listener can override with `listener.name.<name>.` before
/// them.
pub const PER_LISTENER_KEYS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.key.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.cipher.suites",
    "ssl.principal.mapping.rules",
    "ssl.certificate.reload.interval.ms",
    "sasl.enabled.mechanisms",
    "sasl.plain.users.file",
    "connections.max.reauth.ms",
];

/// Whether a key holds a secret, whose value DescribeConfigs and `strata config` never show.
pub fn is_sensitive(key: &str) -> bool {
    key.ends_with(".password") || key.ends_with("ssl.keystore.key") || key.ends_with("jaas.config")
}

/// The listener a `listener.name.<name>.<key>` setting is for, and the key, when the key is
/// one a listener can override.
pub fn per_listener_key(key: &str) -> Option<(String, &str)> {
    let rest = key.strip_prefix("listener.name.")?;
    let (name, key) = rest.split_once('.')?;
    // `<mechanism>.sasl.jaas.config`: the credentials a broker logs in with (Kafka's form).
    let jaas = key
        .strip_suffix(".sasl.jaas.config")
        .is_some_and(|m| Mechanism::from_name(&m.to_ascii_uppercase()).is_some());
    (PER_LISTENER_KEYS.contains(&key) || jaas).then(|| (name.to_ascii_uppercase(), key))
}

/// The Kafka client properties brokers connect to each other with: the inter-broker
/// listener's protocol, its CAs (to verify the other brokers), its certificate (for listeners
/// that require one) and its SASL mechanism and credentials. Secrets: never printed.
#[derive(Clone, Default)]
pub struct InterBrokerClient(pub BTreeMap<String, String>);

impl std::fmt::Debug for InterBrokerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterBrokerClient")
            .field("security.protocol", &self.0.get("security.protocol"))
            .finish_non_exhaustive()
    }
}

/// The client properties of the inter-broker listener (the first of `listeners`).
pub(super) fn inter_broker_client(
    settings: &Settings<'_>,
    listener: &KafkaListener,
) -> Result<InterBrokerClient, ConfigError> {
    let mut props = BTreeMap::from([(
        "security.protocol".to_owned(),
        listener.protocol.name().to_owned(),
    )]);
    let name = &listener.name;
    if let Some(tls) = &listener.tls {
        let (trust, trust_key) = value(settings, name, "ssl.truststore.location");
        if trust.trim().is_empty() {
            return Err(settings.invalid(
                &trust_key,
                format!(
                    "brokers verify each other on the inter-broker listener {name} ({}): set the CAs of their certificates in ssl.truststore.location",
                    listener.protocol
                ),
            ));
        }
        props.insert("ssl.truststore.location".into(), trust.trim().to_owned());
        if tls.client_auth != ClientAuth::None
            && let PemSource::File(path) = &tls.certificate_chain
        {
            props.insert("ssl.keystore.location".into(), path.display().to_string());
        }
    }
    if let Some(sasl) = &listener.sasl {
        let key = "sasl.mechanism.inter.broker.protocol";
        let given = settings.get(key);
        let mechanism = match given.trim() {
            "" => sasl.mechanisms[0],
            name => sasl.mechanism(&name.to_ascii_uppercase()).ok_or_else(|| {
                settings.invalid(
                    key,
                    format!(
                        "'{name}' is not enabled on the inter-broker listener {}",
                        listener.name
                    ),
                )
            })?,
        };
        let jaas_key = format!("{}.sasl.jaas.config", mechanism.name().to_ascii_lowercase());
        let (jaas, _) = value(settings, name, &jaas_key);
        if jaas.trim().is_empty() {
            return Err(settings.invalid(
                &format!("listener.name.{}.{jaas_key}", name.to_ascii_lowercase()),
                format!(
                    "brokers log in to each other on {name} with {}: give this broker's user as {} required username=\"…\" password=\"…\";",
                    mechanism.name(),
                    match mechanism {
                        Mechanism::Plain => "org.apache.kafka.common.security.plain.PlainLoginModule",
                        Mechanism::Scram(_) => "org.apache.kafka.common.security.scram.ScramLoginModule",
                    }
                ),
            ));
        }
        props.insert("sasl.mechanism".into(), mechanism.name().to_owned());
        props.insert("sasl.jaas.config".into(), jaas);
    }
    Ok(InterBrokerClient(props))
}

/// A Kafka listener with its security.
#[derive(Debug, Clone)]
pub struct KafkaListener {
    /// Its name (`EXTERNAL`).
    pub name: String,
    /// Its security protocol.
    pub protocol: SecurityProtocol,
    /// Where it binds.
    pub bind: std::net::SocketAddr,
    /// The host and port other nodes and clients are given for it (port 0: the bound port).
    pub advertised: (String, u16),
    /// Its TLS settings, when its protocol uses TLS.
    pub tls: Option<TlsSettings>,
    /// Its SASL settings, when its protocol uses SASL.
    pub sasl: Option<SaslConfig>,
}

/// Builds the Kafka listeners, the inter-broker listener first.
pub(super) fn kafka_listeners(
    settings: &Settings<'_>,
    specs: &[ListenerSpec],
) -> Result<Vec<KafkaListener>, ConfigError> {
    let map_key = "listener.security.protocol.map";
    let map =
        parse_protocol_map(&settings.get(map_key)).map_err(|e| settings.invalid(map_key, e))?;
    let advertised = parse_advertised(&settings.get("advertised.listeners"), specs)
        .map_err(|e| settings.invalid("advertised.listeners", e))?;
    for (key, _) in settings.entries.iter() {
        if let Some((name, _)) = per_listener_key(key)
            && name != super::listeners::CONTROLLER_NAME
            && name != super::listeners::ADMIN_NAME
            && !specs.iter().any(|l| l.name == name)
        {
            return Err(
                settings.invalid(key, format!("{name} is not a Kafka listener in listeners"))
            );
        }
    }
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let protocol = *map.get(&spec.name).ok_or_else(|| {
            settings.invalid(
                map_key,
                format!(
                    "listener {0} has no security protocol: add {0}:PLAINTEXT (or SSL, SASL_PLAINTEXT, SASL_SSL)",
                    spec.name
                ),
            )
        })?;
        let tls = match protocol.uses_tls() {
            true => Some(tls_settings(settings, &spec.name)?),
            false => None,
        };
        let sasl = match protocol.uses_sasl() {
            true => Some(sasl_config(settings, &spec.name)?),
            false => None,
        };
        out.push(KafkaListener {
            name: spec.name.clone(),
            protocol,
            bind: spec.addr,
            advertised: advertised
                .get(&spec.name)
                .cloned()
                .unwrap_or_else(|| (spec.addr.ip().to_string(), spec.addr.port())),
            tls,
            sasl,
        });
    }
    let key = "inter.broker.listener.name";
    let inter = settings.get(key).trim().to_ascii_uppercase();
    if !inter.is_empty() {
        let at = out.iter().position(|l| l.name == inter).ok_or_else(|| {
            settings.invalid(key, format!("{inter} is not a Kafka listener in listeners"))
        })?;
        let listener = out.remove(at);
        out.insert(0, listener);
    }
    let key = "security.inter.broker.protocol";
    let wanted = settings.get(key);
    if !wanted.trim().is_empty() && wanted.trim() != out[0].protocol.name() {
        return Err(settings.invalid(
            key,
            format!(
                "the inter-broker listener {} uses {}; set inter.broker.listener.name instead",
                out[0].name, out[0].protocol
            ),
        ));
    }
    Ok(out)
}

/// The value of `key` for `listener`: its `listener.name.` override, else the broker-wide one;
/// with the key as written, for errors.
fn value(settings: &Settings<'_>, listener: &str, key: &str) -> (String, String) {
    let found = settings
        .entries
        .iter()
        .find(|(k, _)| per_listener_key(k).is_some_and(|(n, k)| n == listener && k == key));
    match found {
        Some((k, setting)) => (setting.value.clone(), k.clone()),
        None => (settings.get(key), key.to_owned()),
    }
}

fn tls_settings(settings: &Settings<'_>, listener: &str) -> Result<TlsSettings, ConfigError> {
    let get = |key: &str| value(settings, listener, key);
    let invalid = |key: &str, message: String| settings.invalid(key, message);
    for store in ["ssl.keystore.type", "ssl.truststore.type"] {
        let (kind, key) = get(store);
        if !kind.trim().eq_ignore_ascii_case("PEM") {
            return Err(invalid(
                &key,
                format!(
                    "'{kind}' stores are not read; convert it to PEM (keytool -importkeystore to PKCS12, then openssl pkcs12 -nodes)"
                ),
            ));
        }
    }
    let (password, key) = get("ssl.key.password");
    if !password.is_empty() {
        return Err(invalid(
            &key,
            "encrypted private keys are not supported; decrypt the key (openssl pkcs8 -topk8 -nocrypt) and unset this".into(),
        ));
    }
    let (location, location_key) = get("ssl.keystore.location");
    let (chain, chain_key) = get("ssl.keystore.certificate.chain");
    let (key_pem, key_key) = get("ssl.keystore.key");
    let (certificate_chain, private_key) = match (
        location.trim().is_empty(),
        chain.trim().is_empty(),
        key_pem.trim().is_empty(),
    ) {
        (false, true, true) => {
            let file = PemSource::File(PathBuf::from(location.trim()));
            (file.clone(), file)
        }
        (true, false, false) => (PemSource::Inline(chain), PemSource::Inline(key_pem)),
        (true, true, true) => {
            return Err(invalid(
                &location_key,
                format!(
                    "listener {listener} uses TLS and needs a certificate: a PEM file with the key and the chain"
                ),
            ));
        }
        (false, _, _) => {
            return Err(invalid(
                &chain_key,
                "give ssl.keystore.location or ssl.keystore.certificate.chain with ssl.keystore.key, not both".into(),
            ));
        }
        (true, false, true) | (true, true, false) => {
            return Err(invalid(
                &key_key,
                "ssl.keystore.certificate.chain and ssl.keystore.key go together".into(),
            ));
        }
    };
    let (trust_file, trust_key) = get("ssl.truststore.location");
    let (trust_pem, _) = get("ssl.truststore.certificates");
    let truststore = match (trust_file.trim().is_empty(), trust_pem.trim().is_empty()) {
        (true, true) => None,
        (false, true) => Some(PemSource::File(PathBuf::from(trust_file.trim()))),
        (true, false) => Some(PemSource::Inline(trust_pem)),
        (false, false) => {
            return Err(invalid(
                &trust_key,
                "give ssl.truststore.location or ssl.truststore.certificates, not both".into(),
            ));
        }
    };
    let (auth, auth_key) = get("ssl.client.auth");
    let client_auth = ClientAuth::parse(&auth).map_err(|e| invalid(&auth_key, e))?;
    if client_auth != ClientAuth::None && truststore.is_none() {
        return Err(invalid(
            &trust_key,
            format!("ssl.client.auth={auth} needs the CAs that sign client certificates"),
        ));
    }
    let list = |key: &str| {
        get(key)
            .0
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (protocols, protocols_key) = get("ssl.enabled.protocols");
    for protocol in protocols
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        if protocol != "TLSv1.2" && protocol != "TLSv1.3" {
            return Err(invalid(
                &protocols_key,
                format!("'{protocol}' is not supported; use TLSv1.2 and/or TLSv1.3"),
            ));
        }
    }
    let (rules, rules_key) = get("ssl.principal.mapping.rules");
    let principal_mapper = PrincipalMapper::parse(&rules).map_err(|e| invalid(&rules_key, e))?;
    let (interval, interval_key) = get("ssl.certificate.reload.interval.ms");
    let reload_ms: u64 = interval
        .trim()
        .parse()
        .map_err(|_| invalid(&interval_key, format!("'{interval}' is not a number")))?;
    let tls = TlsSettings {
        certificate_chain,
        private_key,
        truststore,
        client_auth,
        protocols: list("ssl.enabled.protocols"),
        cipher_suites: list("ssl.cipher.suites"),
        principal_mapper,
        reload_interval: Duration::from_millis(reload_ms),
    };
    // Load once now, so that a missing file or a key that does not match its certificate is
    // reported by `strata config check` and at startup, naming the setting.
    strata_api::security::TlsContext::load(listener, tls.clone())
        .map_err(|e| invalid(&location_key, e))?;
    Ok(tls)
}

fn sasl_config(settings: &Settings<'_>, listener: &str) -> Result<SaslConfig, ConfigError> {
    let get = |key: &str| value(settings, listener, key);
    let (names, names_key) = get("sasl.enabled.mechanisms");
    let mut mechanisms = Vec::new();
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let mechanism = Mechanism::from_name(&name.to_ascii_uppercase()).ok_or_else(|| {
            settings.invalid(
                &names_key,
                format!("'{name}' is not served; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
            )
        })?;
        if !mechanisms.contains(&mechanism) {
            mechanisms.push(mechanism);
        }
    }
    if mechanisms.is_empty() {
        return Err(settings.invalid(
            &names_key,
            format!("listener {listener} uses SASL and enables no mechanism"),
        ));
    }
    let (file, file_key) = get("sasl.plain.users.file");
    let plain_users = match (mechanisms.contains(&Mechanism::Plain), file.trim()) {
        (true, "") => {
            return Err(settings.invalid(
                &file_key,
                format!("PLAIN on listener {listener} needs its users: name:password lines (or name:sha256:<hex>)"),
            ));
        }
        (_, "") => PlainUsers::default(),
        (_, path) => PlainUsers::load(std::path::Path::new(path))
            .map_err(|e| settings.invalid(&file_key, e))?,
    };
    let (reauth, reauth_key) = get("connections.max.reauth.ms");
    let reauth_ms: u64 = reauth
        .trim()
        .parse()
        .map_err(|_| settings.invalid(&reauth_key, format!("'{reauth}' is not a number")))?;
    Ok(SaslConfig {
        mechanisms,
        plain_users,
        reauth: (reauth_ms > 0).then(|| Duration::from_millis(reauth_ms)),
        failure_delay: settings.millis("connection.failed.authentication.delay.ms")?,
        max_receive_size: settings.parse("sasl.server.max.receive.size", 1024..=i32::MAX as i64)?
            as usize,
    })
}

/// `authorizer.class.name` with `super.users` and `allow.everyone.if.no.acl.found`.
pub(super) fn authorizer(
    settings: &Settings<'_>,
) -> Result<Option<strata_api::security::acl::AuthorizerConfig>, ConfigError> {
    let key = "authorizer.class.name";
    match settings.get(key).trim() {
        "" => return Ok(None),
        "standard" | "org.apache.kafka.metadata.authorizer.StandardAuthorizer" => {}
        other => {
            return Err(settings.invalid(
                key,
                format!(
                    "'{other}' is not served; use org.apache.kafka.metadata.authorizer.StandardAuthorizer (or standard)"
                ),
            ));
        }
    }
    let mut super_users = std::collections::HashSet::new();
    for principal in settings
        .get("super.users")
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        strata_api::security::KafkaPrincipal::parse(principal)
            .map_err(|e| settings.invalid("super.users", e))?;
        super_users.insert(principal.to_owned());
    }
    Ok(Some(strata_api::security::acl::AuthorizerConfig {
        super_users,
        allow_if_no_acl: settings.bool("allow.everyone.if.no.acl.found")?,
    }))
}

/// The controller listener's TLS, when `listener.security.protocol.map` makes CONTROLLER SSL:
/// mutual TLS, every node presenting `listener.name.controller.ssl.keystore.location` and
/// trusting `ssl.truststore.location`. Returns (settings, keystore file, truststore file).
pub(super) fn controller_tls(
    settings: &Settings<'_>,
) -> Result<Option<(TlsSettings, PathBuf, PathBuf)>, ConfigError> {
    let map_key = "listener.security.protocol.map";
    let map =
        parse_protocol_map(&settings.get(map_key)).map_err(|e| settings.invalid(map_key, e))?;
    match map.get("CONTROLLER") {
        None | Some(SecurityProtocol::Plaintext) => Ok(None),
        Some(SecurityProtocol::Ssl) => {
            let mut tls = tls_settings(settings, "CONTROLLER")?;
            let (PemSource::File(keystore), Some(PemSource::File(truststore))) =
                (&tls.certificate_chain, &tls.truststore)
            else {
                let (_, key) = value(settings, "CONTROLLER", "ssl.truststore.location");
                return Err(settings.invalid(
                    &key,
                    "the CONTROLLER listener is mutual TLS: give ssl.keystore.location and ssl.truststore.location as files",
                ));
            };
            let (keystore, truststore) = (keystore.clone(), truststore.clone());
            tls.client_auth = ClientAuth::Required;
            Ok(Some((tls, keystore, truststore)))
        }
        Some(other) => Err(settings.invalid(
            map_key,
            format!("the CONTROLLER listener is PLAINTEXT or SSL (mutual TLS), not {other}"),
        )),
    }
}

/// The SCRAM users of `bootstrap.scram.users.file`, written with a new cluster's first
/// metadata: name and password. Passwords are never printed.
#[derive(Clone, Default)]
pub struct BootstrapUsers(pub Vec<(String, String)>);

impl std::fmt::Debug for BootstrapUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

impl BootstrapUsers {
    /// Reads a users file: `name:password` lines, `#` comments; the error names the line.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut users = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(':') {
                Some((name, password)) if !name.trim().is_empty() && !password.is_empty() => {
                    users.push((name.trim().to_owned(), password.to_owned()));
                }
                _ => {
                    return Err(format!(
                        "{}: line {}: expected name:password",
                        path.display(),
                        n + 1
                    ));
                }
            }
        }
        Ok(Self(users))
    }
}

/// The admin HTTP API's security: https (ADMIN:SSL), who may call it, and how this node calls
/// the other nodes' admin APIs.
#[derive(Clone, Default)]
pub struct AdminApi {
    /// The listener's TLS, when ADMIN is SSL.
    pub tls: Option<TlsSettings>,
    /// `admin.api.authentication`, `admin.api.tokens.file`, `admin.api.admin.principals`.
    pub auth: strata_api::security::admin_auth::AdminAuthSettings,
    /// The CAs this node verifies the other nodes' admin certificates with (ADMIN:SSL).
    pub peer_ca: Option<PathBuf>,
    /// The user and password this node calls the other nodes' admin APIs as (Basic), from
    /// the inter-broker listener's SASL credentials.
    pub peer_login: Option<(String, String)>,
}

impl std::fmt::Debug for AdminApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminApi")
            .field("tls", &self.tls)
            .field("auth", &self.auth)
            .field("peer_ca", &self.peer_ca)
            .field("peer_user", &self.peer_login.as_ref().map(|(user, _)| user))
            .finish()
    }
}

/// `admin.api.*` and the ADMIN listener's protocol.
pub(super) fn admin_api(
    settings: &Settings<'_>,
    inter_broker: Option<&InterBrokerClient>,
) -> Result<AdminApi, ConfigError> {
    use strata_api::security::admin_auth::{AdminAuthSettings, Tokens};
    let map_key = "listener.security.protocol.map";
    let map =
        parse_protocol_map(&settings.get(map_key)).map_err(|e| settings.invalid(map_key, e))?;
    let tls = match map.get(super::listeners::ADMIN_NAME) {
        None | Some(SecurityProtocol::Plaintext) => None,
        Some(SecurityProtocol::Ssl) => {
            let mut tls = tls_settings(settings, super::listeners::ADMIN_NAME)?;
            // Browsers and curl present no certificate: the Kafka listeners' ssl.client.auth
            // applies here only when set for this listener.
            let (_, key) = value(settings, super::listeners::ADMIN_NAME, "ssl.client.auth");
            if key == "ssl.client.auth" {
                tls.client_auth = ClientAuth::None;
            }
            Some(tls)
        }
        Some(other) => {
            return Err(settings.invalid(
                map_key,
                format!("the ADMIN listener is PLAINTEXT (http) or SSL (https), not {other}; its users log in with admin.api.authentication"),
            ));
        }
    };
    let peer_ca = match &tls {
        Some(tls) => match &tls.truststore {
            Some(PemSource::File(path)) => Some(path.clone()),
            _ => {
                let (_, key) = value(
                    settings,
                    super::listeners::ADMIN_NAME,
                    "ssl.truststore.location",
                );
                return Err(settings.invalid(
                    &key,
                    "nodes ask each other's admin API over https: give the CAs of their certificates as a file",
                ));
            }
        },
        None => None,
    };
    let key = "admin.api.authentication";
    let mut auth = AdminAuthSettings {
        failure_delay: settings.millis("connection.failed.authentication.delay.ms")?,
        ..AdminAuthSettings::default()
    };
    let mut token = false;
    for method in settings
        .get(key)
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        match method.to_ascii_lowercase().as_str() {
            "none" => {}
            "basic" => auth.basic = true,
            "token" => token = true,
            other => {
                return Err(settings.invalid(
                    key,
                    format!("'{other}' is not a method; use none, basic, token or basic,token"),
                ));
            }
        }
    }
    let tokens_key = "admin.api.tokens.file";
    let file = settings.get(tokens_key);
    match (token, file.trim()) {
        (true, "") => {
            return Err(settings.invalid(
                tokens_key,
                "token authentication needs the tokens: lines `<sha256-hex> <admin|viewer> <name>` (strata admin-token makes them)",
            ));
        }
        (true, path) => {
            auth.tokens = Some(
                Tokens::load(std::path::Path::new(path))
                    .map_err(|e| settings.invalid(tokens_key, e))?,
            );
        }
        (false, _) => {}
    }
    let principals_key = "admin.api.admin.principals";
    let given = settings.get(principals_key);
    let (list, list_key) = match given.trim() {
        "" => (settings.get("super.users"), "super.users"),
        _ => (given, principals_key),
    };
    for principal in list.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        strata_api::security::KafkaPrincipal::parse(principal)
            .map_err(|e| settings.invalid(list_key, e))?;
        auth.admin_principals.insert(principal.to_owned());
    }
    let peer_login = inter_broker
        .and_then(|c| c.0.get("sasl.jaas.config"))
        .and_then(|jaas| {
            let get = |k| crate::kafka_client::security::jaas_value(jaas, k);
            Some((get("username")?, get("password")?))
        });
    Ok(AdminApi {
        tls,
        auth,
        peer_ca,
        peer_login,
    })
}
