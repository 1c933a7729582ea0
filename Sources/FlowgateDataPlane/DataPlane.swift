import CLibevent
import CFlowgateSys
import FlowgateCore
