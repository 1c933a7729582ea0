#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import FlowgateCore
@testable import FlowgateDataPlane
import FlowgateSystem

/// One event per line, `key=value`, quoted only where needed.
struct LogFormatTests {
    @Test func keyValueLineQuotesWhereNeeded() {
        let line = Log.format(.info, "listener_bound", ["listener": "arn:x/listener/1", "port": 8000, "reason": "in use", "empty": ""])
        #expect(line == "level=info event=listener_bound listener=arn:x/listener/1 port=8000 reason=\"in use\" empty=\"\"")
    }

    @Test func portListsAreCompressedToRanges() {
        #expect(DataPlane.describe([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8")
    }
}
