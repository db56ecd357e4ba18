//! The HTTP surface: the OpenAPI service, the spec and Swagger UI, and the
//! middleware that every request passes through.

mod ask;
mod body;
mod guard;
mod health;
mod links;
mod organize;
mod policy;
mod publish;
mod publish_types;
mod runs;
mod runs_types;

use std::path::PathBuf;

use poem::{Endpoint, EndpointExt, Route, get};
use poem_openapi::{OpenApiService, Tags};

pub use body::{BodyLimits, parse_json_object};
pub use guard::AllowedHosts;

use crate::{config::Settings, db::Database};

/// Groups of operations in the spec.
#[derive(Tags)]
pub enum ApiTags {
    /// Liveness, readiness and metrics.
    Health,
    /// Folder analysis and the run workflow: approve, apply, roll back.
    Runs,
    /// Cloud-eligibility policy: sensitivity rules, routing and budget.
    Policy,
    /// Questions, routed by the policy.
    Ask,
    /// Note organisation: PARA categories and folders.
    Organize,
    /// Link suggestions between notes.
    Links,
    /// The editorial publish queue into the digital garden (GOM).
    Publish,
}

/// Every group of operations, in the order the spec lists them.
type Apis = (
    health::HealthApi,
    runs::RunsApi,
    policy::PolicyApi,
    ask::AskApi,
    organize::OrganizeApi,
    links::LinksApi,
    publish::PublishApi,
);

/// Builds the OpenAPI service over all operations. `vault_root` bounds the
/// folders that analysis may read.
pub fn api_service(db: &Database, vault_root: Option<PathBuf>) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            health::HealthApi { db: db.clone() },
            runs::RunsApi {
                db: db.clone(),
                vault_root,
            },
            policy::PolicyApi,
            ask::AskApi { db: db.clone() },
            organize::OrganizeApi,
            links::LinksApi { db: db.clone() },
            publish::PublishApi { db: db.clone() },
        ),
        "mind-lite",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Local HTTP API for a personal knowledge base. Writes that a client may retry \
         accept an `event_id`: a retry with the same id returns the first response \
         instead of repeating the side effect. Every error response is JSON: \
         `{\"error\": \"<message>\", \"code\": \"<kind>\"}`, plus `field` when one \
         request field is at fault.",
    )
}

/// Returns the OpenAPI spec as pretty-printed JSON, as served at
/// `/openapi.json` and committed in `openapi/openapi.json`.
pub fn spec_json(db: &Database) -> String {
    api_service(db, None).spec()
}

/// Builds the whole application: API routes, `/openapi.json`, `/docs`, and the
/// guard middleware (host check, JSON errors, request log).
pub fn app(db: &Database, settings: &Settings) -> impl Endpoint + 'static {
    let api = api_service(db, settings.vault_root.clone());
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();

    let allowed_hosts = AllowedHosts::new(&settings.allowed_hosts);
    Route::new()
        // GET only, so that other methods get the 405 the API routes give.
        .at("/openapi.json", get(spec))
        .nest("/docs", get(docs))
        .nest("/", api)
        .data(BodyLimits {
            max_bytes: settings.max_body_bytes,
            read_timeout: std::time::Duration::from_secs(settings.body_timeout_secs),
        })
        .around(move |endpoint, request| guard::guard(endpoint, request, allowed_hosts.clone()))
}
