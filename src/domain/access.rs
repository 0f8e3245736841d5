//! Authorization: what a caller may do to a resource. Roles come from two
//! places: the tokens file gives a caller roles on folders, and an image's
//! access bindings give roles on that one image. [`permits`] is the one place
//! that weighs them; both faces reach it through the services, which call
//! [`authorize`] first with the folder alone and load an image's bindings
//! only when the folder's roles are not enough.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use crate::error::ApiError;
use crate::proto::yandex::cloud::access::{AccessBinding, Subject};

/// The folder entry of the tokens file that grants a role in every folder.
pub const ALL_FOLDERS: &str = "*";

/// The subject type and ids of the system subjects that bindings may name.
pub const SYSTEM: &str = "system";
pub const ALL_USERS: &str = "allUsers";
pub const ALL_AUTHENTICATED_USERS: &str = "allAuthenticatedUsers";

/// What a call does to its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Get, List, ListOperations, ListAccessBindings, OperationService.Get.
    Read,
    /// Create, Update, Delete, and cancelling their operations.
    Write,
    /// SetAccessBindings and UpdateAccessBindings.
    ManageAccess,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Read, Action::Write, Action::ManageAccess];

    fn bit(self) -> u8 {
        match self {
            Action::Read => 1,
            Action::Write => 2,
            Action::ManageAccess => 4,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::ManageAccess => "manage access bindings in",
        }
    }
}

/// Which API a resource belongs to: the roles of a service (`compute.*`,
/// `container-registry.*`) reach only its resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Compute,
    ContainerRegistry,
}

/// A set of actions, as roles grant them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Permissions(u8);

impl Permissions {
    pub const NONE: Self = Self(0);
    pub const READ: Self = Self(1);
    pub const WRITE: Self = Self(1 | 2);
    pub const ADMIN: Self = Self(1 | 2 | 4);

    pub fn allows(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// At most `cap`.
    fn within(self, cap: Self) -> Self {
        Self(self.0 & cap.0)
    }
}

/// The roles image-service knows. A binding may name any role id (the API
/// takes any); one not listed here grants nothing on this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Viewer,
    Editor,
    Admin,
    ComputeViewer,
    ComputeEditor,
    ComputeAdmin,
    /// Reads images, to make disks and images from them (how public images are shared).
    ComputeImagesUser,
    ContainerRegistryViewer,
    ContainerRegistryEditor,
    ContainerRegistryAdmin,
    ContainerRegistryImagesPuller,
    ContainerRegistryImagesPusher,
}

impl Role {
    pub const ALL: [Role; 12] = [
        Role::Viewer,
        Role::Editor,
        Role::Admin,
        Role::ComputeViewer,
        Role::ComputeEditor,
        Role::ComputeAdmin,
        Role::ComputeImagesUser,
        Role::ContainerRegistryViewer,
        Role::ContainerRegistryEditor,
        Role::ContainerRegistryAdmin,
        Role::ContainerRegistryImagesPuller,
        Role::ContainerRegistryImagesPusher,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
            Role::ComputeViewer => "compute.viewer",
            Role::ComputeEditor => "compute.editor",
            Role::ComputeAdmin => "compute.admin",
            Role::ComputeImagesUser => "compute.images.user",
            Role::ContainerRegistryViewer => "container-registry.viewer",
            Role::ContainerRegistryEditor => "container-registry.editor",
            Role::ContainerRegistryAdmin => "container-registry.admin",
            Role::ContainerRegistryImagesPuller => "container-registry.images.puller",
            Role::ContainerRegistryImagesPusher => "container-registry.images.pusher",
        }
    }

    pub fn parse(id: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.id() == id)
    }

    /// What the role grants on a resource of `service`.
    pub fn grants(self, service: Service) -> Permissions {
        use Service::{Compute, ContainerRegistry};
        match (self, service) {
            (Role::Viewer, _) => Permissions::READ,
            (Role::Editor, _) => Permissions::WRITE,
            (Role::Admin, _) => Permissions::ADMIN,
            (Role::ComputeViewer | Role::ComputeImagesUser, Compute) => Permissions::READ,
            (Role::ComputeEditor, Compute) => Permissions::WRITE,
            (Role::ComputeAdmin, Compute) => Permissions::ADMIN,
            (
                Role::ContainerRegistryViewer | Role::ContainerRegistryImagesPuller,
                ContainerRegistry,
            ) => Permissions::READ,
            (
                Role::ContainerRegistryEditor | Role::ContainerRegistryImagesPusher,
                ContainerRegistry,
            ) => Permissions::WRITE,
            (Role::ContainerRegistryAdmin, ContainerRegistry) => Permissions::ADMIN,
            _ => Permissions::NONE,
        }
    }

    /// Whether a system subject (`allUsers`, `allAuthenticatedUsers`) may
    /// hold the role: only roles that read, so that a public image can be
    /// seen and used by all but changed by none of them.
    pub fn fits_everyone(id: &str) -> bool {
        Role::parse(id).is_none_or(|role| {
            [Service::Compute, Service::ContainerRegistry]
                .into_iter()
                .all(|service| {
                    role.grants(service).within(Permissions::READ) == role.grants(service)
                })
        })
    }
}

/// What one caller's roles grant in one folder, per service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Grants {
    compute: Permissions,
    container: Permissions,
}

impl Grants {
    fn of(self, service: Service) -> Permissions {
        match service {
            Service::Compute => self.compute,
            Service::ContainerRegistry => self.container,
        }
    }

    fn add(&mut self, role: Role) {
        self.compute = self.compute.with(role.grants(Service::Compute));
        self.container = self.container.with(role.grants(Service::ContainerRegistry));
    }
}

/// Who is calling, as the authentication layer found out from the token; it
/// sits in the request extensions. Without one, authentication is off.
#[derive(Debug)]
pub struct Caller {
    subject_id: Box<str>,
    subject_type: Box<str>,
    /// Called without a token (let in only where a binding to `allUsers` may open the way).
    anonymous: bool,
    /// The roles given for every folder (`*`).
    everywhere: Grants,
    folders: HashMap<Box<str>, Grants>,
}

static ANONYMOUS: LazyLock<Arc<Caller>> = LazyLock::new(|| {
    let mut caller = Caller::new(ALL_USERS, SYSTEM);
    caller.anonymous = true;
    Arc::new(caller)
});

impl Caller {
    /// A caller with no roles yet.
    pub fn new(subject_id: impl Into<Box<str>>, subject_type: impl Into<Box<str>>) -> Self {
        Self {
            subject_id: subject_id.into(),
            subject_type: subject_type.into(),
            anonymous: false,
            everywhere: Grants::default(),
            folders: HashMap::new(),
        }
    }

    /// The caller of a call that brought no token.
    pub fn anonymous() -> Arc<Caller> {
        ANONYMOUS.clone()
    }

    /// Gives the caller `role` in `folder` ([`ALL_FOLDERS`]: in every folder).
    pub fn grant(&mut self, folder: &str, role: Role) {
        if folder == ALL_FOLDERS {
            self.everywhere.add(role);
        } else {
            self.folders.entry(folder.into()).or_default().add(role);
        }
    }

    pub fn with_role(mut self, folder: &str, role: Role) -> Self {
        self.grant(folder, role);
        self
    }

    /// The subject's id: operations record it as `created_by`.
    pub fn subject(&self) -> &str {
        &self.subject_id
    }

    pub fn subject_type(&self) -> &str {
        &self.subject_type
    }

    pub fn is_anonymous(&self) -> bool {
        self.anonymous
    }

    /// Whether the caller's roles allow `action` in every folder of
    /// `service`, so no folder needs finding out.
    pub fn may_everywhere(&self, service: Service, action: Action) -> bool {
        !self.anonymous && self.everywhere.of(service).allows(action)
    }

    fn folder_permissions(&self, service: Service, folder: Option<&str>) -> Permissions {
        if self.anonymous {
            return Permissions::NONE;
        }
        let own = folder
            .and_then(|folder| self.folders.get(folder))
            .map_or(Permissions::NONE, |grants| grants.of(service));
        self.everywhere.of(service).with(own)
    }

    /// Whether a binding to `subject` is a binding to this caller.
    fn is(&self, subject: &Subject) -> bool {
        match (subject.r#type.as_str(), subject.id.as_str()) {
            (SYSTEM, ALL_USERS) => true,
            (SYSTEM, ALL_AUTHENTICATED_USERS) => !self.anonymous,
            (kind, id) => !self.anonymous && kind == &*self.subject_type && id == &*self.subject_id,
        }
    }

    /// What the bindings of a resource grant this caller.
    fn bound_permissions(&self, service: Service, bindings: &[AccessBinding]) -> Permissions {
        let mut granted = Permissions::NONE;
        for binding in bindings {
            let Some(subject) = binding.subject.as_ref().filter(|s| self.is(s)) else {
                continue;
            };
            let Some(role) = Role::parse(&binding.role_id) else {
                continue;
            };
            let mut grants = role.grants(service);
            if subject.r#type == SYSTEM {
                grants = grants.within(Permissions::READ);
            }
            granted = granted.with(grants);
        }
        granted
    }
}

/// What a call is about, as far as authorization cares.
#[derive(Debug, Clone, Copy)]
pub struct Resource<'a> {
    pub service: Service,
    /// Its folder; `None`: a folder this server can't tell, which only roles
    /// in every folder reach.
    pub folder: Option<&'a str>,
    /// Its own access bindings (images of the compute API have them).
    pub bindings: &'a [AccessBinding],
}

impl<'a> Resource<'a> {
    pub fn in_folder(service: Service, folder: Option<&'a str>) -> Self {
        Self {
            service,
            folder,
            bindings: &[],
        }
    }

    pub fn with_bindings(self, bindings: &'a [AccessBinding]) -> Self {
        Self { bindings, ..self }
    }
}

/// Whether `caller` may do `action` to `resource`: a role of the caller in
/// the resource's folder, or a binding on the resource to the caller (or to
/// all users), that grants it.
pub fn permits(caller: &Caller, action: Action, resource: &Resource<'_>) -> bool {
    caller
        .folder_permissions(resource.service, resource.folder)
        .allows(action)
        || caller
            .bound_permissions(resource.service, resource.bindings)
            .allows(action)
}

/// Lets `caller` do `action` to `resource`, or says why not: a caller
/// without a token is asked for one, any other is denied.
pub fn authorize(caller: &Caller, action: Action, resource: &Resource<'_>) -> Result<(), ApiError> {
    if permits(caller, action, resource) {
        return Ok(());
    }
    Err(denied(caller, action, resource.folder))
}

/// The error of a call `caller` may not make.
pub fn denied(caller: &Caller, action: Action, folder: Option<&str>) -> ApiError {
    if caller.anonymous {
        return authentication_required();
    }
    let (subject, verb) = (&caller.subject_id, action.verb());
    ApiError::PermissionDenied(match folder {
        Some(folder) => format!("Permission denied: {subject} may not {verb} folder {folder}"),
        None => {
            format!("Permission denied: {subject} may not {verb} resources outside its folders")
        }
    })
}

/// The answer to a call without a token that needs one.
pub fn authentication_required() -> ApiError {
    ApiError::Unauthenticated(
        "Authentication required: send the header authorization: Bearer <token>".to_owned(),
    )
}

/// The caller of a request, when authentication is on.
pub fn caller_of(extensions: &http::Extensions) -> Option<Arc<Caller>> {
    extensions.get::<Arc<Caller>>().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOLDER: &str = "b1gimagefolder";
    const OTHER_FOLDER: &str = "b1gotherfolder";
    const ME: (&str, &str) = ("aje1", "serviceAccount");

    /// What each role grants, written out by hand: (compute, container registry),
    /// each of "r" (read), "w" (read and write), "a" (all three), "-" (nothing).
    const EXPECTED: [(&str, &str, &str); 13] = [
        ("viewer", "r", "r"),
        ("editor", "w", "w"),
        ("admin", "a", "a"),
        ("compute.viewer", "r", "-"),
        ("compute.editor", "w", "-"),
        ("compute.admin", "a", "-"),
        ("compute.images.user", "r", "-"),
        ("container-registry.viewer", "-", "r"),
        ("container-registry.editor", "-", "w"),
        ("container-registry.admin", "-", "a"),
        ("container-registry.images.puller", "-", "r"),
        ("container-registry.images.pusher", "-", "w"),
        ("resource-manager.clouds.owner", "-", "-"),
    ];

    fn allowed_by(level: &str, action: Action) -> bool {
        match level {
            "r" => action == Action::Read,
            "w" => action != Action::ManageAccess,
            "a" => true,
            _ => false,
        }
    }

    /// Where a role is given, relative to a caller and a resource.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Given {
        InTheFolder,
        InEveryFolder,
        InAnotherFolder,
        BoundToTheCaller,
        BoundToSomeoneElse,
        BoundToTheSameIdOfAnotherType,
        BoundToAllAuthenticatedUsers,
        BoundToAllUsers,
    }

    const GIVEN: [Given; 8] = [
        Given::InTheFolder,
        Given::InEveryFolder,
        Given::InAnotherFolder,
        Given::BoundToTheCaller,
        Given::BoundToSomeoneElse,
        Given::BoundToTheSameIdOfAnotherType,
        Given::BoundToAllAuthenticatedUsers,
        Given::BoundToAllUsers,
    ];

    fn binding(role: &str, id: &str, kind: &str) -> AccessBinding {
        AccessBinding {
            role_id: role.to_owned(),
            subject: Some(Subject {
                id: id.to_owned(),
                r#type: kind.to_owned(),
            }),
        }
    }

    /// Every role (and an unknown one) x where it is given x token or not x
    /// service x action, against the table above.
    #[test]
    fn every_role_action_and_binding_decides_as_the_table_says() {
        let mut cases = 0;
        for (role_id, compute, container) in EXPECTED {
            for given in GIVEN {
                for anonymous in [false, true] {
                    let mut caller = Caller::new(ME.0, ME.1);
                    let role = Role::parse(role_id);
                    match (given, role) {
                        (Given::InTheFolder, Some(role)) => caller.grant(FOLDER, role),
                        (Given::InEveryFolder, Some(role)) => caller.grant(ALL_FOLDERS, role),
                        (Given::InAnotherFolder, Some(role)) => caller.grant(OTHER_FOLDER, role),
                        _ => {}
                    }
                    caller.anonymous = anonymous;
                    let bindings: Vec<AccessBinding> = match given {
                        Given::BoundToTheCaller => vec![binding(role_id, ME.0, ME.1)],
                        Given::BoundToSomeoneElse => vec![binding(role_id, "aje2", ME.1)],
                        Given::BoundToTheSameIdOfAnotherType => {
                            vec![binding(role_id, ME.0, "userAccount")]
                        }
                        Given::BoundToAllAuthenticatedUsers => {
                            vec![binding(role_id, ALL_AUTHENTICATED_USERS, SYSTEM)]
                        }
                        Given::BoundToAllUsers => vec![binding(role_id, ALL_USERS, SYSTEM)],
                        _ => vec![],
                    };
                    for (service, level) in [
                        (Service::Compute, compute),
                        (Service::ContainerRegistry, container),
                    ] {
                        let resource =
                            Resource::in_folder(service, Some(FOLDER)).with_bindings(&bindings);
                        for action in Action::ALL {
                            let reaches = match given {
                                // A caller without a token has no roles of its own.
                                Given::InTheFolder
                                | Given::InEveryFolder
                                | Given::BoundToTheCaller => !anonymous,
                                Given::BoundToAllAuthenticatedUsers => !anonymous,
                                Given::BoundToAllUsers => true,
                                Given::InAnotherFolder
                                | Given::BoundToSomeoneElse
                                | Given::BoundToTheSameIdOfAnotherType => false,
                            };
                            // Everyone's bindings only ever read.
                            let to_everyone = matches!(
                                given,
                                Given::BoundToAllAuthenticatedUsers | Given::BoundToAllUsers
                            );
                            let expected = reaches
                                && allowed_by(level, action)
                                && !(to_everyone && action != Action::Read);
                            assert_eq!(
                                permits(&caller, action, &resource),
                                expected,
                                "{role_id} {given:?} anonymous={anonymous} {service:?} {action:?}"
                            );
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 13 * 8 * 2 * 2 * 3);
    }

    #[test]
    fn a_resource_of_an_unknown_folder_needs_a_role_in_every_folder() {
        let local = Caller::new("ci", "userAccount").with_role(FOLDER, Role::Admin);
        let global = Caller::new("ops", "userAccount").with_role(ALL_FOLDERS, Role::Viewer);
        let unknown = Resource::in_folder(Service::ContainerRegistry, None);
        assert!(!permits(&local, Action::Read, &unknown));
        assert!(permits(&global, Action::Read, &unknown));
        assert!(!permits(&global, Action::Write, &unknown));
        assert!(global.may_everywhere(Service::Compute, Action::Read));
        assert!(!local.may_everywhere(Service::Compute, Action::Read));
    }

    #[test]
    fn roles_add_up() {
        let caller = Caller::new("ci", "userAccount")
            .with_role(FOLDER, Role::ComputeImagesUser)
            .with_role(FOLDER, Role::ContainerRegistryImagesPusher);
        let compute = Resource::in_folder(Service::Compute, Some(FOLDER));
        let container = Resource::in_folder(Service::ContainerRegistry, Some(FOLDER));
        assert!(permits(&caller, Action::Read, &compute));
        assert!(!permits(&caller, Action::Write, &compute));
        assert!(permits(&caller, Action::Write, &container));
        let bindings = [binding("compute.editor", "ci", "userAccount")];
        assert!(permits(
            &caller,
            Action::Write,
            &compute.with_bindings(&bindings)
        ));
    }

    #[test]
    fn denials_say_who_and_what() {
        let caller = Caller::new("ci", "userAccount").with_role(FOLDER, Role::Viewer);
        let other = Resource::in_folder(Service::Compute, Some(OTHER_FOLDER));
        assert_eq!(
            authorize(&caller, Action::Read, &other),
            Err(ApiError::PermissionDenied(
                "Permission denied: ci may not read folder b1gotherfolder".into()
            ))
        );
        assert_eq!(
            authorize(&caller, Action::ManageAccess, &Resource::in_folder(Service::Compute, None)),
            Err(ApiError::PermissionDenied(
                "Permission denied: ci may not manage access bindings in resources outside its folders".into()
            ))
        );
        let anonymous = authorize(&Caller::anonymous(), Action::Read, &other).unwrap_err();
        assert!(
            matches!(anonymous, ApiError::Unauthenticated(_)),
            "{anonymous:?}"
        );
    }

    #[test]
    fn only_reading_roles_fit_everyone() {
        assert!(Role::fits_everyone("viewer"));
        assert!(Role::fits_everyone("compute.images.user"));
        assert!(Role::fits_everyone("container-registry.images.puller"));
        assert!(Role::fits_everyone("some.future.role"));
        assert!(!Role::fits_everyone("editor"));
        assert!(!Role::fits_everyone("compute.admin"));
        assert!(!Role::fits_everyone("container-registry.images.pusher"));
    }
}
