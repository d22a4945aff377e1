package optimize

// #cgo pkg-config: highs
// #include <stdlib.h>
// #include "util/HighsInt.h"
// // Declared here rather than through interfaces/highs_c_api.h: that header
// // defines its status constants with external linkage, and the binding's
// // cgo objects define them too, so including it would duplicate symbols.
// extern HighsInt Highs_getModelStatus(const void* highs);
// extern HighsInt Highs_getIntInfoValue(const void* highs, const char* info, HighsInt* value);
// extern HighsInt Highs_getNumCol(const void* highs);
// extern HighsInt Highs_getNumRow(const void* highs);
// extern HighsInt Highs_getSolution(const void* highs, double* col_value, double* col_dual, double* row_value, double* row_dual);
import "C"

import (
	"reflect"
	"unsafe"

	"github.com/lanl/highs"
)

// Values of kHighsModelStatus* and kHighsSolutionStatusFeasible in HiGHS 1.10.
const (
	cModelStatusOptimal          = 7
	cModelStatusInfeasible       = 8
	cModelStatusUnboundedOrInfea = 9
	cModelStatusUnbounded        = 10
	cModelStatusTimeLimit        = 13
	cSolutionStatusFeasible      = 2
)

// rawModelLayoutOK reports whether highs.RawModel is still the single
// unsafe.Pointer to the C object that recoverSolution relies on (true for
// lanl/highs v1.0.0, the only released version).
func rawModelLayoutOK() bool {
	t := reflect.TypeOf(highs.RawModel{})
	return t.NumField() == 1 && t.Field(0).Type == reflect.TypeOf(unsafe.Pointer(nil))
}

// recoverSolution reads the model status and, when HiGHS holds a feasible
// point, the primal solution straight from the C object behind raw. The
// binding has no accessor for either after a run that returned a warning.
// ok is false when the C object cannot be reached.
func recoverSolution(raw *highs.RawModel) (st highs.ModelStatus, x []float64, ok bool) {
	if raw == nil || !rawModelLayoutOK() {
		return highs.UnknownModelStatus, nil, false
	}
	h := *(*unsafe.Pointer)(unsafe.Pointer(raw))
	if h == nil {
		return highs.UnknownModelStatus, nil, false
	}
	switch C.Highs_getModelStatus(h) {
	case cModelStatusOptimal:
		st = highs.Optimal
	case cModelStatusInfeasible:
		st = highs.Infeasible
	case cModelStatusUnboundedOrInfea:
		st = highs.UnboundedOrInfeasible
	case cModelStatusUnbounded:
		st = highs.Unbounded
	case cModelStatusTimeLimit:
		st = highs.TimeLimit
	default:
		st = highs.UnknownModelStatus
	}
	name := C.CString("primal_solution_status")
	defer C.free(unsafe.Pointer(name))
	var pss C.HighsInt
	if C.Highs_getIntInfoValue(h, name, &pss) != 0 || pss != cSolutionStatusFeasible {
		return st, nil, true
	}
	nc, nr := int(C.Highs_getNumCol(h)), int(C.Highs_getNumRow(h))
	if nc == 0 {
		return st, nil, true
	}
	col := make([]C.double, nc)
	colDual := make([]C.double, nc)
	row := make([]C.double, max(nr, 1))
	rowDual := make([]C.double, max(nr, 1))
	if C.Highs_getSolution(h, &col[0], &colDual[0], &row[0], &rowDual[0]) != 0 {
		return st, nil, true
	}
	x = make([]float64, nc)
	for i, v := range col {
		x[i] = float64(v)
	}
	return st, x, true
}
