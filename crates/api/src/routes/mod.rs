pub(crate) mod agreements;
mod callbacks;
pub(crate) mod sandbox;
