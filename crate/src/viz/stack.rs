//! Stack: several figures and tables shown as one notebook output (being written).
pub struct Stack;
