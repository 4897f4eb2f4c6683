package npy

import (
	"fmt"
	"math"
)

// shapeOr returns shape, or a 1-d shape of length n when none is given.
func shapeOr(n int, shape []int) []int {
	if len(shape) == 0 {
		return []int{n}
	}
	return append([]int(nil), shape...)
}

// FromFloat32 wraps data (not copied) as a float32 array. With no shape the
// array is 1-d; build an Array with an empty Shape for a 0-d array.
func FromFloat32(data []float32, shape ...int) *Array {
	return &Array{DType: Float32, Shape: shapeOr(len(data), shape), Data: data}
}

// FromInt64 wraps data (not copied) as an int64 array.
func FromInt64(data []int64, shape ...int) *Array {
	return &Array{DType: Int64, Shape: shapeOr(len(data), shape), Data: data}
}

// Float64s returns the elements as float64, converting from any dtype
// (bool becomes 0 or 1). A float64 array returns its own slice, not a copy.
func (a *Array) Float64s() ([]float64, error) {
	switch v := a.Data.(type) {
	case []float64:
		return v, nil
	case []float32:
		return conv[float64](v), nil
	case []int64:
		return conv[float64](v), nil
	case []int32:
		return conv[float64](v), nil
	case []uint8:
		return conv[float64](v), nil
	case []bool:
		return boolConv[float64](v), nil
	}
	return nil, fmt.Errorf("npy: cannot convert %T to float64", a.Data)
}

// Float32s returns the elements as float32, converting from any dtype
// (float64 and int64 may lose precision). A float32 array returns its own
// slice, not a copy.
func (a *Array) Float32s() ([]float32, error) {
	switch v := a.Data.(type) {
	case []float32:
		return v, nil
	case []float64:
		return conv[float32](v), nil
	case []int64:
		return conv[float32](v), nil
	case []int32:
		return conv[float32](v), nil
	case []uint8:
		return conv[float32](v), nil
	case []bool:
		return boolConv[float32](v), nil
	}
	return nil, fmt.Errorf("npy: cannot convert %T to float32", a.Data)
}

// Int64s returns the elements as int64 for integer and bool dtypes. Float
// dtypes convert only when every value is integral and in range, so labels
// saved as floats still load but real-valued data is not silently truncated.
// An int64 array returns its own slice, not a copy.
func (a *Array) Int64s() ([]int64, error) {
	switch v := a.Data.(type) {
	case []int64:
		return v, nil
	case []int32:
		return conv[int64](v), nil
	case []uint8:
		return conv[int64](v), nil
	case []bool:
		return boolConv[int64](v), nil
	case []float32:
		return floatToInt(v)
	case []float64:
		return floatToInt(v)
	}
	return nil, fmt.Errorf("npy: cannot convert %T to int64", a.Data)
}

func conv[D, S float32 | float64 | int64 | int32 | uint8](src []S) []D {
	out := make([]D, len(src))
	for i, x := range src {
		out[i] = D(x)
	}
	return out
}

func boolConv[D float32 | float64 | int64](src []bool) []D {
	out := make([]D, len(src))
	for i, x := range src {
		if x {
			out[i] = 1
		}
	}
	return out
}

func floatToInt[S float32 | float64](src []S) ([]int64, error) {
	out := make([]int64, len(src))
	for i, x := range src {
		f := float64(x)
		// 2^63 is exactly representable; anything >= it overflows int64.
		if f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
			return nil, fmt.Errorf("npy: element %d (%v) is not an integer in int64 range", i, f)
		}
		out[i] = int64(f)
	}
	return out, nil
}
