import FlowgateCore
print("flowgatectl")
