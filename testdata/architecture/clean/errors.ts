// Fixture: the root error module.
export const ERROR = "error";
