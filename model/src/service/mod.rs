//! Service definitions: the OSCAR service object, Kubernetes quantities, validation with field
//! paths, and FDL files. Pure code shared by the server and the browser (the form and YAML tab
//! validate with the same rules the server enforces).

pub mod expose;
pub mod fdl;
pub mod federation;
pub mod model;
pub mod mount;
pub mod order;
pub mod quantity;
pub mod validate;

pub use model::{
    Environment, JOB_LABEL, MOUNT_LABEL, OWNER_ANNOTATION, PLATFORM_STORE, SERVICE_LABEL, Service,
    StorageIo, Synchronous, Visibility,
};
pub use validate::FieldError;
