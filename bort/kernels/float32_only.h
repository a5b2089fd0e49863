// The type rule every Bort kernel has: float32 in, float32 out.
#ifndef BORT_KERNELS_FLOAT32_ONLY_H_
#define BORT_KERNELS_FLOAT32_ONLY_H_

#include <string>
#include <unordered_map>
#include <vector>

#include "mxnet/lib_api.h"

namespace bort {

// The body of an operator's InferType: refuse any input that is not float32, name the operator and the input.
inline mxnet::ext::MXReturnValue Float32Only(const char* op_name, std::vector<int>* in_types,
                                             std::vector<int>* out_types) {
  for (size_t i = 0; i < in_types->size(); ++i) {
    if (in_types->at(i) != mxnet::ext::kFloat32) {
      MX_ERROR_MSG << op_name << ": input " << i << " must be float32";
      return mxnet::ext::MX_FAIL;
    }
  }
  for (size_t i = 0; i < out_types->size(); ++i) out_types->at(i) = mxnet::ext::kFloat32;
  return mxnet::ext::MX_SUCCESS;
}

}  // namespace bort

#endif  // BORT_KERNELS_FLOAT32_ONLY_H_
