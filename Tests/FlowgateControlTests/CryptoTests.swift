import Testing
import FlowgateCore
@testable import FlowgateControl

@Suite struct CryptoTests {
    // FIPS 180-4 examples (NIST CSRC "SHA256.pdf" example values).
    @Test func sha256KnownAnswers() {
        #expect(Hex.encode(SHA256.hash("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Hex.encode(SHA256.hash("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Hex.encode(SHA256.hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(Hex.encode(SHA256.hash([UInt8](repeating: 0x61, count: 1_000_000)))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // 55, 56 and 64 bytes: the padding boundaries.
        #expect(Hex.encode(SHA256.hash([UInt8](repeating: 0x61, count: 55))) == "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318")
        #expect(Hex.encode(SHA256.hash([UInt8](repeating: 0x61, count: 56))) == "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a")
        #expect(Hex.encode(SHA256.hash([UInt8](repeating: 0x61, count: 64))) == "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb")
    }

    // RFC 4231 §4.2-4.8 test cases 1, 2, 3, 4, 6, 7.
    @Test func hmacRFC4231() {
        func mac(_ key: [UInt8], _ data: [UInt8]) -> String { Hex.encode(HMACSHA256.mac(key: key, message: data)) }
        #expect(mac([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(mac(Array("Jefe".utf8), Array("what do ya want for nothing?".utf8))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(mac([UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50))
                == "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe")
        #expect(mac((1...25).map { UInt8($0) }, [UInt8](repeating: 0xcd, count: 50))
                == "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b")
        #expect(mac([UInt8](repeating: 0xaa, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        #expect(mac([UInt8](repeating: 0xaa, count: 131),
                    Array("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".utf8))
                == "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2")
    }

    @Test func basicISODateRoundTrip() {
        #expect(BasicISODate.parse("19700101T000000Z") == 0)
        #expect(BasicISODate.parse("20261123T044500Z") == 1_795_409_100)
        #expect(BasicISODate.format(1_795_409_100) == "20261123T044500Z")
        #expect(BasicISODate.parse("2026-11-23T04:45:00Z") == nil)
        #expect(BasicISODate.parse("20261323T044500Z") == nil)
    }

    @Test func jsonParserDistinguishesTypes() throws {
        let v = try JSONValue.parse(#"{"a":1,"b":1.5,"c":true,"d":null,"e":"x\u00e9\ud83d\ude00","f":[1,"2"]}"#)
        #expect(v["a"] == .int(1))
        #expect(v["b"] == .double(1.5))
        #expect(v["c"] == .bool(true))
        #expect(v["d"] == .null)
        #expect(v["e"] == .string("xé😀"))
        #expect(v["f"] == .array([.int(1), .string("2")]))
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse("{\"a\":}") }
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse("{\"a\":1} x") }
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse("[01]") }
        #expect(JSONValue.object([("k", .string("a\"b\n"))]).serialized() == #"{"k":"a\"b\n"}"#)
    }
}
