//! The REST route table, read from the `google.api.http` options of the served
//! services at start: an RPC with a rule has a route, with no per-route code.

use http::Method;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};

use super::template::{BadPercentEncoding, PathTemplate, PathVars, TemplateError};

/// Where the request body goes (the rule's `body`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyTarget {
    /// No body; everything not in the path comes from the query.
    None,
    /// `body: "*"`: the whole request message; no query parameters.
    Whole,
    /// `body: "field"`: that field; the rest from the query.
    Field(String),
}

#[derive(Debug)]
pub struct Route {
    pub method: Method,
    pub template: PathTemplate,
    pub body: BodyTarget,
    /// `/package.Service/Method`, the gRPC path the call is sent to.
    pub grpc_path: String,
    /// The same path as a request URI, parsed once.
    pub grpc_uri: http::Uri,
    pub input: MessageDescriptor,
    pub output: MessageDescriptor,
}

#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
}

/// Why no route answers a request.
#[derive(Debug, PartialEq, Eq)]
pub enum NoRoute {
    NotFound,
    /// The path is known; these are the methods it takes.
    MethodNotAllowed(Vec<Method>),
    BadPath(BadPercentEncoding),
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("the descriptors lack {0}")]
    Missing(String),
    #[error("{method}: {source}")]
    Template {
        method: String,
        source: TemplateError,
    },
    #[error("{method}: unsupported HTTP method {verb:?}")]
    Verb { method: String, verb: String },
}

impl RouteTable {
    /// Routes for every method with an http rule in `services`.
    pub fn from_services(pool: &DescriptorPool, services: &[&str]) -> Result<Self, RouteError> {
        let http = pool
            .get_extension_by_name("google.api.http")
            .ok_or_else(|| RouteError::Missing("google.api.http".into()))?;
        let mut routes = Vec::new();
        for name in services {
            let service = pool
                .get_service_by_name(name)
                .ok_or_else(|| RouteError::Missing((*name).into()))?;
            for method in service.methods() {
                let options = method.options();
                if !options.has_extension(&http) {
                    continue;
                }
                let Value::Message(rule) = options.get_extension(&http).into_owned() else {
                    continue;
                };
                let grpc_path = format!("/{}/{}", service.full_name(), method.name());
                let mut rules = vec![rule.clone()];
                if let Some(Value::List(extra)) =
                    rule.get_field_by_name("additional_bindings").as_deref()
                {
                    rules.extend(extra.iter().filter_map(|v| v.as_message().cloned()));
                }
                for rule in rules {
                    let route = route_from_rule(&rule, &grpc_path, &method)?;
                    if let Some(post) = post_twin(&route) {
                        routes.push(post);
                    }
                    routes.push(route);
                }
            }
        }
        // A route with a custom verb is more specific than one whose last
        // variable would swallow the `:verb`; try those first.
        routes.sort_by_key(|r| !r.template.has_verb());
        Ok(Self { routes })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route for `method` and the raw `path`, with the decoded path variables.
    pub fn find(&self, method: &Method, path: &str) -> Result<(&Route, PathVars<'_>), NoRoute> {
        let mut allowed = Vec::new();
        // Once a path matched a route with its custom verb, the routes
        // without one (tried after) don't get it: `{image_id}` must not take
        // `x:listAccessBindings` for the PATCH of an image.
        let mut verb_matched = false;
        for route in &self.routes {
            if verb_matched && !route.template.has_verb() {
                break;
            }
            let Some(bound) = route.template.matches(path).map_err(NoRoute::BadPath)? else {
                continue;
            };
            verb_matched |= route.template.has_verb();
            if route.method == *method {
                return Ok((route, bound));
            }
            if !allowed.contains(&route.method) {
                allowed.push(route.method.clone());
            }
        }
        if allowed.is_empty() {
            Err(NoRoute::NotFound)
        } else {
            Err(NoRoute::MethodNotAllowed(allowed))
        }
    }
}

/// The API design guide shows `POST /operations/{id}:cancel` where the
/// descriptor says GET: a GET route of a Cancel also answers POST (with no
/// body). Reads keep GET alone.
fn post_twin(route: &Route) -> Option<Route> {
    if route.method != Method::GET || !route.grpc_path.ends_with("/Cancel") {
        return None;
    }
    Some(Route {
        method: Method::POST,
        template: route.template.clone(),
        body: BodyTarget::None,
        grpc_path: route.grpc_path.clone(),
        grpc_uri: route.grpc_uri.clone(),
        input: route.input.clone(),
        output: route.output.clone(),
    })
}

fn route_from_rule(
    rule: &DynamicMessage,
    grpc_path: &str,
    method: &prost_reflect::MethodDescriptor,
) -> Result<Route, RouteError> {
    let text = |field: &str| {
        rule.get_field_by_name(field)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let mut binding = None;
    for (field, verb) in [
        ("get", Method::GET),
        ("put", Method::PUT),
        ("post", Method::POST),
        ("delete", Method::DELETE),
        ("patch", Method::PATCH),
    ] {
        if rule.has_field_by_name(field) {
            binding = Some((verb, text(field)));
        }
    }
    if binding.is_none()
        && let Some(Value::Message(custom)) = rule.get_field_by_name("custom").as_deref()
    {
        let kind = custom
            .get_field_by_name("kind")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let path = custom
            .get_field_by_name("path")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let verb = Method::from_bytes(kind.as_bytes()).map_err(|_| RouteError::Verb {
            method: grpc_path.into(),
            verb: kind.clone(),
        })?;
        binding = Some((verb, path));
    }
    let (verb, path) = binding.ok_or_else(|| RouteError::Verb {
        method: grpc_path.into(),
        verb: "(none)".into(),
    })?;
    let template = PathTemplate::parse(&path).map_err(|source| RouteError::Template {
        method: grpc_path.into(),
        source,
    })?;
    let body = match text("body").as_str() {
        "" => BodyTarget::None,
        "*" => BodyTarget::Whole,
        field => BodyTarget::Field(field.to_owned()),
    };
    let grpc_uri = http::Uri::try_from(grpc_path).map_err(|_| RouteError::Verb {
        method: grpc_path.into(),
        verb: "(not a valid URI path)".into(),
    })?;
    Ok(Route {
        grpc_uri,
        method: verb,
        template,
        body,
        grpc_path: grpc_path.to_owned(),
        input: method.input(),
        output: method.output(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_verb_is_not_taken_by_a_variable_of_another_route() {
        let pool = crate::proto::descriptor_pool().expect("descriptors");
        let table = RouteTable::from_services(pool, &[crate::proto::COMPUTE_IMAGE_SERVICE])
            .expect("routes");
        let found = table.find(&Method::PATCH, "/compute/v1/images/fd8a:listAccessBindings");
        assert_eq!(
            found.err(),
            Some(NoRoute::MethodNotAllowed(vec![Method::GET]))
        );
        let (route, vars) = table
            .find(&Method::PATCH, "/compute/v1/images/fd8a")
            .expect("the Update route");
        assert!(route.grpc_path.ends_with("/Update"));
        assert_eq!(vars, [("image_id", "fd8a".to_owned())]);
    }
}
