// The operator library's entry point: MXNet calls initialize() with its version when it loads the library
// (mx.library.load); the operators themselves register in layer_norm.cc and distillation.cc.
#include "mxnet/lib_api.h"

using namespace mxnet::ext;

MXReturnValue initialize(int version) {
  if (version < 10900) {
    MX_ERROR_MSG << "Bort's kernels need MXNet 1.9 or later, got " << version;
    return MX_FAIL;
  }
  return MX_SUCCESS;
}
