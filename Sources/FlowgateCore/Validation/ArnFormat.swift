// The ARN shapes of AWS Global Accelerator (docs/api.md §3, docs/architecture.md §2):
//   arn:aws:globalaccelerator::<12 digits>:accelerator/<uuid>
//   arn:aws:globalaccelerator::<12 digits>:accelerator/<uuid>/listener/<8 hex>

public enum ArnFormat {
    public static let prefix = "arn:aws:globalaccelerator::"
    public static let maxLength = 255
    public static let acceleratorPattern = "arn:aws:globalaccelerator::<12 digits>:accelerator/<uuid>"
    public static let listenerPattern = "arn:aws:globalaccelerator::<12 digits>:accelerator/<uuid>/listener/<8 hex>"

    public struct ListenerParts: Sendable, Hashable {
        public var account: String
        public var acceleratorID: String
        public var listenerID: String
        /// The ARN of the accelerator this listener belongs to.
        public var acceleratorArn: String
    }

    /// (account, accelerator uuid) of an accelerator ARN, nil if not of that form.
    public static func parseAccelerator(_ arn: String) -> (account: String, acceleratorID: String)? {
        guard arn.hasPrefix(prefix) else { return nil }
        let rest = Array(arn.utf8.dropFirst(prefix.utf8.count))
        // 12 digits + ":accelerator/" (13) + uuid (36)
        guard rest.count == 12 + 13 + 36 else { return nil }
        let account = rest[0..<12]
        guard account.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        guard String(decoding: rest[12..<25], as: UTF8.self) == ":accelerator/" else { return nil }
        let id = String(decoding: rest[25...], as: UTF8.self)
        guard NameUUID.isCanonical(id) else { return nil }
        return (String(decoding: account, as: UTF8.self), id)
    }

    public static func parseListener(_ arn: String) -> ListenerParts? {
        let marker = "/listener/"
        let bytes = Array(arn.utf8)
        guard bytes.count == prefix.utf8.count + 12 + 13 + 36 + marker.utf8.count + 8 else { return nil }
        let accLength = prefix.utf8.count + 12 + 13 + 36
        let accArn = String(decoding: bytes[0..<accLength], as: UTF8.self)
        guard let acc = parseAccelerator(accArn) else { return nil }
        guard String(decoding: bytes[accLength..<(accLength + marker.utf8.count)], as: UTF8.self) == marker else { return nil }
        let id = bytes[(accLength + marker.utf8.count)...]
        guard id.allSatisfy(isHex) else { return nil }
        return ListenerParts(account: acc.account, acceleratorID: acc.acceleratorID,
                             listenerID: String(decoding: id, as: UTF8.self), acceleratorArn: accArn)
    }

    static func isHex(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "f"))
            || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "F"))
    }
}
