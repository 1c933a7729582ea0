// Which rule an issue broke, as data: the config file prints the issue's
// `message`; an API front end words the same rule its own way (the ELB shape
// answers "Invalid input for field/attribute ...", Sources/FlowgateControl/ELB/ELBIssueText.swift).
// One decision, in these validators; several wordings.

public enum ValidationRule: Sendable, Hashable {
    /// An integer outside its range (`unit`: "seconds", "minutes" or none).
    case outOfRange(Int, ClosedRange<Int>, unit: String?)
    /// A string longer than `max` characters.
    case tooLong(count: Int, max: Int)
    /// A name that is not one of `allowed` (e.g. lb_algorithm).
    case notOneOf(String, allowed: [String])
    /// A flag that only accepts true (admin_state_up of a pool).
    case onlyTrue
    /// Not an IPv4 or IPv6 address literal.
    case notIPAddress
    /// A string that must start with `prefix` (url_path: "/").
    case mustStartWith(String)
    /// A session persistence type the pool's protocol does not allow.
    case persistenceTypeNotAllowed(PersistenceType, PoolProtocol)
    /// persistence_timeout outside the pool protocol's range.
    case persistenceTimeout(Int, ClosedRange<Int>, PoolProtocol)
    /// A field required together with another value (cookie_name with APP_COOKIE).
    case requiredWith(String)
    /// A field allowed only together with another value.
    case onlyAllowedWith(String)
    /// A cookie name that is not [A-Za-z0-9._-]{1,maxCookieNameLength}.
    case cookieName
}
