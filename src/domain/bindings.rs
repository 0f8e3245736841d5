//! Access bindings of an image: the requests of ListAccessBindings,
//! SetAccessBindings and UpdateAccessBindings parsed once against the
//! official field rules, and what a change effectively does.

use super::access::{self, Role};
use super::rules::TextRule;
use crate::error::ApiError;
use crate::proto::yandex::cloud::access::{
    AccessBinding, AccessBindingAction, AccessBindingDelta, ListAccessBindingsRequest,
    SetAccessBindingsRequest, UpdateAccessBindingsRequest,
};

const RESOURCE_ID: TextRule = TextRule::new("resource_id", 64, None);
const ROLE_ID: TextRule = TextRule::new("role_id", 64, None);
const SUBJECT_ID: TextRule = TextRule::new("subject.id", 100, None);
const SUBJECT_TYPE: TextRule = TextRule::new("subject.type", 100, None);
const PAGE_TOKEN: TextRule = TextRule::new("page_token", 2000, None);

/// The most bindings a Set may hold, and deltas an Update.
pub const MAX_BINDINGS: usize = 1000;
/// ListAccessBindings' page size when the request gives 0.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// The subject types of the API.
pub const SUBJECT_TYPES: [&str; 4] = [
    "userAccount",
    "serviceAccount",
    "federatedUser",
    access::SYSTEM,
];
/// The ids a `system` subject may have besides groups.
pub const SYSTEM_SUBJECTS: [&str; 2] = [access::ALL_AUTHENTICATED_USERS, access::ALL_USERS];

fn required(rule: TextRule, value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(ApiError::invalid_argument(rule.field, "is required"));
    }
    rule.check(value)
}

/// A valid binding: role and subject present and within bounds, the subject
/// of a known type (and a `system` one a known id or group).
pub fn check_binding(binding: &AccessBinding) -> Result<(), ApiError> {
    required(ROLE_ID, &binding.role_id)?;
    let Some(subject) = &binding.subject else {
        return Err(ApiError::invalid_argument("subject", "is required"));
    };
    required(SUBJECT_ID, &subject.id)?;
    required(SUBJECT_TYPE, &subject.r#type)?;
    if !SUBJECT_TYPES.contains(&subject.r#type.as_str()) {
        return Err(ApiError::invalid_argument(
            "subject.type",
            format!("must be one of {}", SUBJECT_TYPES.join(", ")),
        ));
    }
    let group = |id: &str, kind: &str| {
        id.strip_prefix(&format!("group:{kind}:"))
            .and_then(|rest| rest.strip_suffix(":users"))
            .is_some_and(|inner| !inner.is_empty())
    };
    if subject.r#type == access::SYSTEM
        && !SYSTEM_SUBJECTS.contains(&subject.id.as_str())
        && !group(&subject.id, "organization")
        && !group(&subject.id, "federation")
    {
        return Err(ApiError::invalid_argument(
            "subject.id",
            "a system subject is allAuthenticatedUsers, allUsers or group:organization|federation:<id>:users",
        ));
    }
    if subject.r#type == access::SYSTEM
        && SYSTEM_SUBJECTS.contains(&subject.id.as_str())
        && !Role::fits_everyone(&binding.role_id)
    {
        return Err(ApiError::invalid_argument(
            "role_id",
            format!(
                "{} can't be given to {}: everyone's roles may only read (viewer, compute.images.user, ...)",
                binding.role_id, subject.id
            ),
        ));
    }
    Ok(())
}

/// A valid ListAccessBindings: the image, where the page starts and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListBindings {
    pub resource_id: String,
    pub offset: usize,
    pub size: usize,
}

impl ListBindings {
    pub fn parse(request: ListAccessBindingsRequest) -> Result<Self, ApiError> {
        required(RESOURCE_ID, &request.resource_id)?;
        if !(0..=MAX_BINDINGS as i64).contains(&request.page_size) {
            return Err(ApiError::invalid_argument(
                "page_size",
                format!("must be from 0 to {MAX_BINDINGS}"),
            ));
        }
        PAGE_TOKEN.check(&request.page_token)?;
        // The token is where the next page starts (bindings keep their order).
        let offset = match request.page_token.as_str() {
            "" => 0,
            token => token.parse().map_err(|_| {
                ApiError::invalid_argument("page_token", "is not a token this server gave")
            })?,
        };
        let size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            size => size as usize,
        };
        Ok(Self {
            resource_id: request.resource_id,
            offset,
            size,
        })
    }
}

/// A valid SetAccessBindings: the image and its bindings from now on.
pub fn parse_set(
    request: SetAccessBindingsRequest,
) -> Result<(String, Vec<AccessBinding>), ApiError> {
    required(RESOURCE_ID, &request.resource_id)?;
    if request.access_bindings.len() > MAX_BINDINGS {
        return Err(ApiError::invalid_argument(
            "access_bindings",
            format!("at most {MAX_BINDINGS} bindings"),
        ));
    }
    for binding in &request.access_bindings {
        check_binding(binding)?;
    }
    Ok((request.resource_id, request.access_bindings))
}

/// A valid UpdateAccessBindings: the image and 1 to 1000 deltas.
pub fn parse_update(
    request: UpdateAccessBindingsRequest,
) -> Result<(String, Vec<AccessBindingDelta>), ApiError> {
    required(RESOURCE_ID, &request.resource_id)?;
    let count = request.access_binding_deltas.len();
    if !(1..=MAX_BINDINGS).contains(&count) {
        return Err(ApiError::invalid_argument(
            "access_binding_deltas",
            format!("1 to {MAX_BINDINGS} deltas, got {count}"),
        ));
    }
    for delta in &request.access_binding_deltas {
        let action = AccessBindingAction::try_from(delta.action).unwrap_or_default();
        if action == AccessBindingAction::Unspecified {
            return Err(ApiError::invalid_argument(
                "action",
                "is required: ADD or REMOVE",
            ));
        }
        match &delta.access_binding {
            Some(binding) => check_binding(binding)?,
            None => return Err(ApiError::invalid_argument("access_binding", "is required")),
        }
    }
    Ok((request.resource_id, request.access_binding_deltas))
}

fn delta(action: AccessBindingAction, binding: &AccessBinding) -> AccessBindingDelta {
    AccessBindingDelta {
        action: action as i32,
        access_binding: Some(binding.clone()),
    }
}

/// `current` after `deltas`, and the deltas that changed something (adding
/// a binding that is there, or removing one that isn't, changes nothing).
pub fn apply_deltas(
    current: &[AccessBinding],
    deltas: &[AccessBindingDelta],
) -> (Vec<AccessBinding>, Vec<AccessBindingDelta>) {
    let mut bindings = current.to_vec();
    let mut effective = Vec::new();
    for change in deltas {
        let Some(binding) = &change.access_binding else {
            continue;
        };
        let at = bindings.iter().position(|b| b == binding);
        match (AccessBindingAction::try_from(change.action), at) {
            (Ok(AccessBindingAction::Add), None) => {
                bindings.push(binding.clone());
                effective.push(change.clone());
            }
            (Ok(AccessBindingAction::Remove), Some(at)) => {
                bindings.remove(at);
                effective.push(change.clone());
            }
            _ => {}
        }
    }
    (bindings, effective)
}

/// The deltas that make `current` into `next` (a Set's effect): removals first.
pub fn set_deltas(
    current: &[AccessBinding],
    next: &[AccessBinding],
) -> (Vec<AccessBinding>, Vec<AccessBindingDelta>) {
    let mut unique: Vec<AccessBinding> = Vec::with_capacity(next.len());
    for binding in next {
        if !unique.contains(binding) {
            unique.push(binding.clone());
        }
    }
    let removed = current
        .iter()
        .filter(|b| !unique.contains(b))
        .map(|b| delta(AccessBindingAction::Remove, b));
    let added = unique
        .iter()
        .filter(|b| !current.contains(b))
        .map(|b| delta(AccessBindingAction::Add, b));
    let effective = removed.chain(added).collect();
    (unique, effective)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::yandex::cloud::access::Subject;

    fn binding(role: &str, id: &str, kind: &str) -> AccessBinding {
        AccessBinding {
            role_id: role.into(),
            subject: Some(Subject {
                id: id.into(),
                r#type: kind.into(),
            }),
        }
    }

    #[test]
    fn bindings_keep_the_field_rules() {
        assert!(check_binding(&binding("viewer", "aje1", "serviceAccount")).is_ok());
        assert!(check_binding(&binding("compute.images.user", "allUsers", "system")).is_ok());
        assert!(
            check_binding(&binding(
                "viewer",
                "group:organization:bpf1:users",
                "system"
            ))
            .is_ok()
        );
        let field = |b: AccessBinding| check_binding(&b).unwrap_err().to_string();
        assert!(field(binding("", "a", "userAccount")).starts_with("role_id:"));
        assert!(field(binding(&"r".repeat(65), "a", "userAccount")).starts_with("role_id:"));
        assert!(field(binding("viewer", "", "userAccount")).starts_with("subject.id:"));
        assert!(
            field(binding("viewer", &"a".repeat(101), "userAccount")).starts_with("subject.id:")
        );
        assert!(field(binding("viewer", "a", "robot")).starts_with("subject.type:"));
        assert!(field(binding("viewer", "everyone", "system")).starts_with("subject.id:"));
        let no_subject = AccessBinding {
            role_id: "viewer".into(),
            subject: None,
        };
        assert!(field(no_subject).starts_with("subject:"));
    }

    #[test]
    fn only_changes_are_effective() {
        let a = binding("viewer", "a", "userAccount");
        let b = binding("editor", "b", "userAccount");
        let c = binding("viewer", "c", "userAccount");
        let add = |x: &AccessBinding| delta(AccessBindingAction::Add, x);
        let remove = |x: &AccessBinding| delta(AccessBindingAction::Remove, x);
        let (after, effective) = apply_deltas(
            &[a.clone(), b.clone()],
            &[add(&a), add(&c), remove(&b), remove(&c), remove(&b)],
        );
        // a kept (its ADD changed nothing), c added then removed, b removed once.
        assert_eq!(after, std::slice::from_ref(&a));
        assert_eq!(effective, [add(&c), remove(&b), remove(&c)]);
        let (set, effective) =
            set_deltas(&[a.clone(), b.clone()], &[b.clone(), c.clone(), c.clone()]);
        assert_eq!(set, [b.clone(), c.clone()]);
        assert_eq!(effective, [remove(&a), add(&c)]);
    }

    #[test]
    fn requests_are_bounded() {
        let list = |size: i64, token: &str| {
            ListBindings::parse(ListAccessBindingsRequest {
                resource_id: "fd8x".into(),
                page_size: size,
                page_token: token.into(),
            })
        };
        assert_eq!(list(0, "").unwrap().size, DEFAULT_PAGE_SIZE);
        assert_eq!(list(5, "10").unwrap().offset, 10);
        assert!(list(1001, "").is_err());
        assert!(list(5, "x").is_err());
        assert!(list(5, &"1".repeat(2001)).is_err());
        let update = |n: usize| {
            parse_update(UpdateAccessBindingsRequest {
                resource_id: "fd8x".into(),
                access_binding_deltas: vec![
                    delta(
                        AccessBindingAction::Add,
                        &binding("viewer", "a", "userAccount")
                    );
                    n
                ],
            })
        };
        assert!(update(0).is_err());
        assert!(update(1).is_ok());
        assert!(update(1001).is_err());
        let set = parse_set(SetAccessBindingsRequest {
            resource_id: String::new(),
            access_bindings: vec![],
        });
        assert!(set.unwrap_err().to_string().starts_with("resource_id:"));
    }
}
