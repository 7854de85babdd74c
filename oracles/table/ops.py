"""The elementwise op table: one entry per op, everything the suite knows about it.

Modelled on PyTorch's OpInfo (one record per op, capabilities and skips on the record). An entry says:
- which torch OpInfo entries it verifies (`opinfo`: `name` or `name[variant]` as in torch's `op_db`), so
  `python -m gradoracle coverage` counts against the installed torch's own list;
- how torch users write it (`spellings`: display template + the call it makes; each hits torch's own
  dispatch path, e.g. `x ** 2` and `torch.square(x)`);
- what it is mathematically (`sympy`, from which SymPy derives the exact derivative);
- how torch computes it (`forward` and `local_grads`, written after torch's formulas in
  tools/autograd/derivatives.yaml, with every float operation rounded by the `RoundingModel`; and
  `forward_tangent` where forward-mode AD's formula differs numerically), the kernel's accuracy (`ulps`);
- its domain as data (`intervals`, `specials`: oracles.table.domains) and where strategies draw each
  argument (`domains`), how its operands are drawn (`operands`, `parameters`, `constant_bases`);
- torch's values at its kinks, poles, edges and saturation points (`conventions`, written in
  oracles.table.op_conventions), pinned by tests/test_conventions.py and written out to docs/conventions.md;
- known deviations of torch's higher derivatives (`second_order_deviation`, each a registered finding),
  the ids of the registered findings that touch it (`findings`), tests it skips and why (`skips`), and
  whether its backward saves a tensor (`saves_tensors`);
- a derivative written by hand at a few points (`references`), for the oracle's self-test.
Capabilities (`smooth`, `second_order`, ...) derive from the entry; tests select ops with `ops_where`.
Adding an op is one `add_op(...)` call below.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

import mpmath
import sympy
import torch
import torch.nn.functional as torch_nn_functional
from flint import arb

from oracles.numerics.exact import STEP_EVALUATORS
from oracles.numerics.rounding import Singular, int_power
from oracles.numerics.sympy_functions import Ceil, Floor, RoundHalfEven, Trunc
from oracles.table import op_conventions as pins
from oracles.table.conventions import Convention
from oracles.table.domains import NOT_SMOOTH, REALS, Domain, Interval, Kind, Special, edge, kink, pole


class Operands(enum.Enum):
    """How the strategies draw an op's arguments."""

    TENSORS = "every argument is a subexpression"
    SCALAR = "either argument may be a Python scalar (the first where a spelling takes one)"
    EXPONENT = "the second argument is always a constant exponent"
    ORDERED = "the second is the first plus a nonzero offset, so the two never tie"
    PARAMETERS = "the arguments after the first are constants drawn from `parameters`"


@dataclass(frozen=True)
class Spelling:
    template: str  # "{0}" and "{1}" are the rendered arguments
    call: Callable
    const_first: bool = False  # the first argument may be a Python scalar (`2 - x`, `2 ** x`)
    const_second: bool = True  # the second argument may be a Python scalar (`x - 2`)


@dataclass(frozen=True)
class Reference:
    """∂op/∂(each tensor argument) at `point`, in closed form written by hand (mpmath, no SymPy).
    `point` lists every argument; constant ones (pow_scalar's exponent, clamp's bounds) as Python scalars."""

    point: tuple[float, ...]
    partials: Callable[..., tuple]


@dataclass(frozen=True)
class Deviation:
    """Points where torch's higher derivative is known to differ from the mathematics: counted as
    unverified with `description`, never judged; each is a registered finding pinned by a test."""

    applies: Callable[[list[arb]], bool]  # the argument values (balls) -> whether the point is affected
    description: str


@dataclass(frozen=True)
class Skip:
    """A test this entry skips in a dtype, and why (a measured reason, never a disagreement)."""

    test: str
    dtype: str
    reason: str


@dataclass(frozen=True)
class BlindSpot:
    """A property test of this entry whose points are mostly unverified in a dtype, measured, and why: the
    suite's guard against strategies that mostly miss (more than half unverified fails a test) is waived
    there, and the test still fails on any wrong verdict."""

    test: str
    dtype: str
    reason: str


@dataclass(frozen=True)
class OpSpec:
    name: str
    opinfo: tuple[str, ...]
    spellings: tuple[Spelling, ...]
    sympy: Callable  # sympy args -> sympy expression of exactly the function torch computes
    forward: Callable  # (RoundingModel, *arg balls) -> result ball
    local_grads: Callable  # (RoundingModel, arg balls, result ball) -> ∂result/∂arg_i, as torch computes them
    domains: tuple[Domain, ...]
    intervals: tuple[Interval, ...]
    specials: tuple[Special, ...] = ()
    operands: Operands = Operands.TENSORS
    ulps: float = 0.5  # torch kernel's accuracy in ulps (0.5 = correctly rounded)
    conventions: tuple[Convention, ...] = ()  # torch's values at kinks, poles, boundaries, saturation
    parameters: tuple[tuple[float, ...], ...] = ()  # choices of the constant arguments (Operands.PARAMETERS)
    # where the first argument's kinks or jumps lie, given the constant arguments (Domain.OFF_PARAMETERS keeps
    # it away from them); None: at the constants themselves, as clamp's bounds
    parameter_points: Callable[[tuple[float, ...]], tuple[float, ...]] | None = None
    constant_bases: tuple[float, ...] = ()  # the first argument may be one of these Python scalars
    # forward-mode AD's tangent (JetModel, argument values, argument tangents) -> result tangent, where
    # derivatives.yaml's `result:` formula differs numerically from the backward formula
    forward_tangent: Callable | None = None
    second_order_deviation: Deviation | None = None
    skips: tuple[Skip, ...] = ()
    blind_spots: tuple[BlindSpot, ...] = ()
    # the dtypes torch can differentiate the op in (None: every one); an op whose kernel or backward raises
    # NotImplementedError in some dtype is drawn only at the root of its own tests, never inside others'
    backward_dtypes: tuple[str, ...] | None = None
    # why torch.func's vmap refuses the op itself (no batching rule for its kernel): jacfwd and hessian batch it,
    # jacrev batches only its backward, grad and jvp batch nothing
    vmap_refusal: str = ""
    saves_tensors: bool = True  # torch's backward keeps a tensor for later (add, sub, neg do not)
    # positions of arguments whose Python scalar the kernel takes in opmath: mul_kernel and div_true_kernel
    # read it with iter.original_scalar_value<opmath_t> (float for bfloat16 and float16) and round the
    # product once; add and sub round the scalar to the dtype first
    opmath_scalars: tuple[int, ...] = ()
    # which one, where recorded (derivatives.yaml: "self" or "result" in the formula): modifying it in
    # place before backward is the version-counter error, modifying the other is harmless
    saves: str | None = None
    findings: tuple[str, ...] = ()  # ids of the registered torch findings (findings.toml) that touch this op
    # why the jet model cannot judge this op's higher derivatives yet (empty: it can); such an op is
    # checked at first order only, and the reason is on the record
    higher_order_gap: str = ""
    # its `forward` and `local_grads` use only arithmetic, the model's methods (a `sign` or `greater` that differs
    # between the points splits them) and methods of their arguments, so they also run on the fast pass's intervals
    # (oracles.core.fast_pass); a formula that calls an arb function on its argument (`arb.atan2(a, b)`) would
    # crash on an interval, so the flag is set by reading them
    interval_formulas: bool = False
    references: tuple[Reference, ...] = ()

    @property
    def arity(self) -> int:
        return len(self.domains)

    @property
    def constant_args(self) -> tuple[int, ...]:
        """Arguments that are always Python scalars, never tensors."""
        if self.operands is Operands.EXPONENT:
            return (1,)
        if self.operands is Operands.PARAMETERS:
            return tuple(range(1, self.arity))
        return ()

    @property
    def k(self) -> float:
        """Allowed error of one evaluation in units of u (1 ulp = 2u)."""
        return 2 * self.ulps

    # ------------------------------------------------------------ capabilities, derived from the entry
    @property
    def smooth(self) -> bool:
        """Continuously differentiable on its domain: no kink, jump or tie (poles and edges are outside
        the open domain). Backward's semantics are tested on these: almost every element is verifiable."""
        return not any(s.kind in NOT_SMOOTH for s in self.specials)

    @property
    def second_order(self) -> bool:
        """Its double backward is judged against the jet model: every op but those with jumps, whose
        derivative is piecewise constant (0, or frac's 1), so a double backward has nothing to compute; and
        those whose `higher_order_gap` says why the model cannot follow torch there yet."""
        return not self.higher_order_gap and not any(s.kind is Kind.JUMP for s in self.specials)

    @property
    def forward_mode(self) -> bool:
        """Forward-mode AD (forward_ad, jvp, jacfwd) is judged with the same jet model."""
        return self.second_order

    @property
    def torch_func(self) -> bool:
        """torch.func's transforms (grad, vjp, jacrev, hessian, vmap) are judged with the same jet model."""
        return self.second_order

    @property
    def every_dtype(self) -> bool:
        """torch's backward runs in every dtype, so the op may appear anywhere in a composition."""
        return self.backward_dtypes is None

    @property
    def saves_input(self) -> bool:
        return self.saves == "input"

    @property
    def saves_result(self) -> bool:
        return self.saves == "result"

    def points_of(self, parameters: tuple[float, ...]) -> tuple[float, ...]:
        """The first argument's kinks or jumps for these constant arguments."""
        return parameters if self.parameter_points is None else self.parameter_points(parameters)

    def blind_spot(self, test: str, dtype: str) -> str | None:
        return next((b.reason for b in self.blind_spots if b.test == test and b.dtype == dtype), None)

    def skip_reason(self, test: str, dtype: str) -> str | None:
        if self.backward_dtypes is not None and dtype not in self.backward_dtypes:
            return f"torch differentiates {self.name} in {', '.join(self.backward_dtypes)} only"
        return next((s.reason for s in self.skips if s.test == test and s.dtype == dtype), None)


CAPABILITIES = ("smooth", "every_dtype", "second_order", "forward_mode", "torch_func", "saves_tensors", "saves_input",
                "saves_result")

OPS: dict[str, OpSpec] = {}


def add_op(name, spellings, sympy_fn, forward, local_grads, domains, *, opinfo=None, intervals=None,
        **extra) -> None:
    """One entry. `opinfo` defaults to the op's own name; `intervals` to the reals for every argument."""
    OPS[name] = OpSpec(name, tuple(opinfo or (name,)), tuple(spellings), sympy_fn, forward, local_grads,
                       tuple(domains), tuple(intervals or (REALS,) * len(domains)), **extra)


def ops_where(**capabilities: bool) -> tuple[str, ...]:
    """The names of the ops whose capabilities (CAPABILITIES) have the given values, in table order:
    `ops_where(second_order=True)`."""
    unknown = sorted(set(capabilities) - set(CAPABILITIES))
    if unknown:
        raise ValueError(f"unknown capability {', '.join(map(repr, unknown))}; choose from {', '.join(CAPABILITIES)}")
    return tuple(name for name, op in OPS.items()
                 if all(getattr(op, flag) == value for flag, value in capabilities.items()))


def unary_spellings(name: str, *more: Spelling, method: bool = True) -> list[Spelling]:
    fn = getattr(torch, name)
    spellings = [Spelling(f"torch.{name}({{0}})", fn)]
    if method:
        spellings.append(Spelling(f"{{0}}.{name}()", lambda a, _n=name: getattr(a, _n)()))
    return spellings + list(more)


def binary_spellings(name: str, operator: str | None = None, **flags) -> list[Spelling]:
    fn = getattr(torch, name)
    spellings = []
    if operator is not None:
        spellings.append(Spelling(f"{{0}} {operator} {{1}}", _OPERATORS[operator], const_first=True))
    spellings.append(Spelling(f"torch.{name}({{0}}, {{1}})", fn, **flags))
    spellings.append(Spelling(f"{{0}}.{name}({{1}})", lambda a, b, _n=name: getattr(a, _n)(b), **flags))
    return spellings


_OPERATORS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "**": lambda a, b: a**b,
}

R, P, NZ, U, B = Domain.REAL, Domain.POSITIVE, Domain.NONZERO, Domain.UNIT, Domain.BOUNDED
TENSORS, SCALAR, EXPONENT, ORDERED, PARAMETERS = (
    Operands.TENSORS, Operands.SCALAR, Operands.EXPONENT, Operands.ORDERED, Operands.PARAMETERS)
POSITIVE_REALS = Interval(0.0, low_closed=False)
NONNEGATIVE_REALS = Interval(0.0, low_closed=True)
ONE = arb(1)
mp = mpmath.mp


def ref(point: tuple[float, ...], partials: Callable[..., tuple]) -> Reference:
    return Reference(point, partials)


# ---------------------------------------------------------------- arithmetic (correctly rounded)
add_op("add", binary_spellings("add", "+"), lambda a, b: a + b,
    lambda F, a, b: F.add(a, b), lambda F, args, y: (ONE, ONE), (R, R), operands=SCALAR,
    opinfo=("add", "__radd__"), saves_tensors=False,
    findings=("func-forward-mode-upcast",),
    references=(ref((0.75, -1.25), lambda a, b: (1, 1)),),
    interval_formulas=True)
add_op("sub", binary_spellings("sub", "-"), lambda a, b: a - b,
    lambda F, a, b: F.sub(a, b), lambda F, args, y: (ONE, -ONE), (R, R), operands=SCALAR,
    opinfo=("sub", "__rsub__"), saves_tensors=False,
    findings=("func-forward-mode-upcast",),
    references=(ref((0.75, -1.25), lambda a, b: (1, -1)),),
    interval_formulas=True)
add_op("mul", binary_spellings("mul", "*"), lambda a, b: a * b,
    lambda F, a, b: F.mul(a, b), lambda F, args, y: (args[1], args[0]), (R, R), operands=SCALAR,
    opinfo=("mul", "__rmul__"), opmath_scalars=(0, 1),
    findings=("func-forward-mode-upcast",),
    references=(ref((0.75, -1.25), lambda a, b: (b, a)),),
    interval_formulas=True)
# derivatives.yaml: self: grad / other; other: -grad * ((self / other) / other)
add_op("div", binary_spellings("div", "/") + [Spelling("torch.true_divide({0}, {1})", torch.true_divide)],
    lambda a, b: a / b, lambda F, a, b: F.div(a, b),
    lambda F, args, y: (F.div(ONE, args[1]), -F.div(F.div(args[0], args[1]), args[1])),
    (R, NZ), operands=SCALAR, opinfo=("div[no_rounding_mode]", "true_divide", "__rdiv__"),
    # `c / x` is reciprocal(x) * c (Tensor.__rtruediv__): two roundings, so only the divisor's scalar is opmath
    opmath_scalars=(1,),
    specials=(pole("x1 = 0", 0.0, arg=1),), conventions=pins.DIV,
    findings=("func-forward-mode-upcast", "forward-mode-zero-tangent-times-inf"),
    references=(ref((0.75, -1.25), lambda a, b: (1 / b, -a / b**2)),),
    interval_formulas=True)
add_op("neg", [Spelling("-{0}", lambda a: -a), *unary_spellings("neg")[0:2],
            Spelling("torch.negative({0})", torch.negative)],
    lambda a: -a, lambda F, a: -a, lambda F, args, y: (-ONE,), (R,), saves_tensors=False,
    references=(ref((0.75,), lambda a: (-1,)),),
    interval_formulas=True)


# pow(Tensor, Scalar): grad * exponent * self.pow(exponent - 1); integer, negative and rational exponents
def _power(base: arb, exponent: arb) -> arb:
    """base ** exponent; an exact integer exponent needs no logarithm (so 0 ** 2 and (-2) ** 3 work). On a
    jet (the second-order model), each further derivative's exponent is rounded as torch rounds it."""
    if hasattr(base, "power"):  # an oracles.higher.jets.Jet (a higher layer: recognised by its method)
        return base.power(exponent, lower=_double_minus_one)
    if exponent.is_exact() and exponent.is_integer():
        return int_power(base, int(exponent.unique_fmpz()))
    return base**exponent


def _double_minus_one(exponent: arb) -> arb:
    """`exponent - 1` as torch computes it, on the double Scalar: rounded unless a double holds it
    (x ** (1/3) at x = 5e-324 in float64: the rounding of 1/3 - 1 moves the gradient by 2e2 ulps)."""
    exact = exponent - 1
    if exact.is_exact() and arb(float(exact.mid())) == exact:
        return exact
    return exact * (1 + arb(0, 2.0**-53))


add_op("pow_scalar", [Spelling("{0} ** {1}", _OPERATORS["**"]), Spelling("torch.pow({0}, {1})", torch.pow),
                   Spelling("{0}.pow({1})", lambda a, b: a.pow(b))],
    lambda a, c: a**c,
    lambda F, a, c: F.round(_power(a, c), 2),
    lambda F, args, y: (F.mul(args[1], F.round(_power(args[0], _double_minus_one(args[1])), 2)),),
    (R, R), operands=EXPONENT, ulps=1, opinfo=("pow",),
    specials=(pole("x0 = 0 with a negative or fractional exponent (an edge for fractional ones)", 0.0),),
    conventions=pins.POW_SCALAR,
    findings=("pow-negative-exponent-overflow", "pow-scalar-power-overflow", "backward-intermediate-overflow",
              "pow-bfloat16-scalar-exponent-rounded"),
    references=(ref((1.25, 3.0), lambda a, c: (3 * a**2,)),
                ref((-1.5, -2.0), lambda a, c: (-2 / a**3,)),
                ref((1.25, 0.5), lambda a, c: (1 / (2 * mp.sqrt(a)),))))
# pow(Tensor, Tensor): self: grad * exponent * self.pow(exponent - 1); exponent: grad * result * self.log()
add_op("pow", [Spelling("{0} ** {1}", _OPERATORS["**"], const_first=True, const_second=False),
            Spelling("torch.pow({0}, {1})", torch.pow, const_first=True, const_second=False),
            Spelling("{0}.pow({1})", lambda a, b: a.pow(b), const_second=False)],
    lambda a, b: a**b,
    lambda F, a, b: F.round((b * a.log()).exp(), 2),
    lambda F, args, y: (F.mul(args[1], F.round((F.sub(args[1], ONE) * args[0].log()).exp(), 2)),
                        F.mul(y, F.round(args[0].log(), 2))),
    (P, B), ulps=1, opinfo=("pow", "__rpow__"), constant_bases=(2.0, 0.5, 3.0, 1.5, 10.0),
    intervals=(NONNEGATIVE_REALS, REALS), specials=(edge("x0 = 0", 0.0),), conventions=pins.POW,
    # pow_backward_self is where(exponent == 0, 0, grad * exponent * self.pow(exponent - 1)): at exponent 0
    # its dependence on the exponent is masked, so ∂²(a ** b)/∂b∂a = 1/a comes out 0 (cf. pytorch#89757).
    second_order_deviation=Deviation(lambda values: values[1].contains(0), "pow's double backward at exponent 0"),
    findings=("pow-base-gradient-overflow", "pow-double-backward-exponent-zero", "pow-forward-mode-zero-tangent-nan"),
    references=(ref((1.25, 0.75), lambda a, b: (b * a ** (b - 1), a**b * mp.log(a))),))
add_op("reciprocal", unary_spellings("reciprocal"), lambda a: 1 / a,
    lambda F, a: F.div(ONE, a), lambda F, args, y: (-F.mul(y, y),), (NZ,),
    specials=(pole("x = 0", 0.0),), conventions=pins.RECIPROCAL,
    references=(ref((-1.25,), lambda a: (-1 / a**2,)),),
    interval_formulas=True)
add_op("square", unary_spellings("square"), lambda a: a**2,
    lambda F, a: F.mul(a, a), lambda F, args, y: (F.mul(arb(2), args[0]),), (R,),
    saves="input", references=(ref((-1.25,), lambda a: (2 * a,)),),
    interval_formulas=True)
add_op("sqrt", unary_spellings("sqrt"), sympy.sqrt,
    lambda F, a: F.round(a.sqrt()), lambda F, args, y: (F.div(ONE, F.mul(arb(2), y)),), (P,),
    intervals=(NONNEGATIVE_REALS,), specials=(edge("x = 0", 0.0),), conventions=pins.SQRT,
    findings=("sqrt-negative-zero",),
    references=(ref((1.25,), lambda a: (1 / (2 * mp.sqrt(a)),)),),
    interval_formulas=True)
# rsqrt: -0.5 * grad * result.pow(3)
add_op("rsqrt", unary_spellings("rsqrt"), lambda a: 1 / sympy.sqrt(a),
    lambda F, a: F.round(a.rsqrt(), 2), lambda F, args, y: (F.mul(arb(-0.5), F.round(int_power(y, 3), 2)),),
    (P,), ulps=1, intervals=(POSITIVE_REALS,), specials=(pole("x = 0", 0.0),), conventions=pins.RSQRT,
    references=(ref((1.25,), lambda a: (-1 / (2 * a * mp.sqrt(a)),)),),
    interval_formulas=True)


# ---------------------------------------------------------------- transcendental
def unary_kernel(F, value: arb, k: float) -> arb:
    """What a kernel of one function (exp, cos, sinh, rsqrt, atan2, hypot, ...) accurate to k·u returns for the
    exact `value`, as the tensor holds it. Its bfloat16 and float16 kernels compute in float
    (UnaryOpsKernel.cpp: Vectorized<BFloat16>/<Half> map the float function; the scalar path calls it on
    float(a)) and round once: within u of the value, not k·u. Measured: for every finite bfloat16 and float16
    x, torch's exp, cos, sinh, cosh and rsqrt equal their float32 result rounded once (atan2 and hypot too,
    with the second argument the values reversed). Backward formulas that call such a kernel (sin's
    grad * self.cos(), asinh's (self.pow(2) + 1).rsqrt()) get it with the forward's accuracy."""
    return F.store(F.opmath.round(value, k))


def add_unary(name, sympy_fn, arb_function, local, domain=R, ulps=1.0, spellings=None, **extra):
    """A unary op whose forward is one torch kernel accurate to `ulps` (`unary_kernel`), modelled by
    `arb_function`."""
    k = 2 * ulps
    # arb's own function (arb.exp) is called as the argument's method, which an interval has too
    method = arb_function.__name__ if getattr(arb, arb_function.__name__, None) is arb_function else None

    def forward(F, a):
        return unary_kernel(F, getattr(a, method)() if method else arb_function(a), k)

    add_op(name, spellings or unary_spellings(name), sympy_fn, forward, local, (domain,), ulps=ulps, **extra)


def k_of(name):
    return OPS[name].k


def saturates(where: str) -> Special:
    return Special(Kind.SATURATION, where)


add_unary("exp", sympy.exp, arb.exp, lambda F, args, y: (y,), B,
       saves="result", references=(ref((0.75,), lambda a: (mp.exp(a),)),),
    interval_formulas=True)
add_unary("expm1", lambda a: sympy.exp(a) - 1, arb.expm1, lambda F, args, y: (F.add(y, ONE),), B,
       findings=("expm1-result-plus-one",),
       references=(ref((0.75,), lambda a: (mp.exp(a),)),),
    interval_formulas=True)
add_unary("log", sympy.log, arb.log, lambda F, args, y: (F.div(ONE, args[0]),), P,
       intervals=(POSITIVE_REALS,), specials=(pole("x = 0", 0.0),), conventions=pins.LOG,
       references=(ref((1.25,), lambda a: (1 / a,)),),
    interval_formulas=True)
add_unary("log1p", lambda a: sympy.log(1 + a), arb.log1p,
       lambda F, args, y: (F.div(ONE, F.add(args[0], ONE)),), P,
       intervals=(Interval(-1.0),), specials=(pole("x = -1", -1.0),), conventions=pins.LOG1P,
       references=(ref((0.75,), lambda a: (1 / (1 + a),)),),
    interval_formulas=True)
add_unary("sin", sympy.sin, arb.sin, lambda F, args, y: (unary_kernel(F, args[0].cos(), k_of("sin")),),
       saves="input", references=(ref((0.5,), lambda a: (mp.cos(a),)),),
    interval_formulas=True)
add_unary("cos", sympy.cos, arb.cos, lambda F, args, y: (-unary_kernel(F, args[0].sin(), k_of("cos")),),
       saves="input", references=(ref((0.5,), lambda a: (-mp.sin(a),)),),
    interval_formulas=True)
add_unary("tan", sympy.tan, arb.tan, lambda F, args, y: (F.add(ONE, F.mul(y, y)),), U,
       specials=(Special(Kind.POLE, "x = π/2 + kπ, which no float is", pinned=False),),
       references=(ref((0.5,), lambda a: (1 / mp.cos(a) ** 2,)),),
    interval_formulas=True)
# tanh_backward: grad * (1 - y * y), in float for bfloat16 and float16 (BinaryOpsKernel.cpp), rounded once
add_unary("tanh", sympy.tanh, arb.tanh, lambda F, args, y: (F.opmath.sub(ONE, F.opmath.mul(y, y)),),
       specials=(saturates("large |x|: the result rounds to ±1 and 1 - y² to 0"),), conventions=pins.TANH,
       findings=("tanh-sigmoid-saturation",),
       saves="result", references=(ref((0.5,), lambda a: (1 / mp.cosh(a) ** 2,)),),
    interval_formulas=True)
add_unary("sinh", sympy.sinh, arb.sinh, lambda F, args, y: (unary_kernel(F, args[0].cosh(), k_of("sinh")),), B,
       references=(ref((0.5,), lambda a: (mp.cosh(a),)),),
    interval_formulas=True)
add_unary("cosh", sympy.cosh, arb.cosh, lambda F, args, y: (unary_kernel(F, args[0].sinh(), k_of("cosh")),), B,
       references=(ref((0.5,), lambda a: (mp.sinh(a),)),),
    interval_formulas=True)
add_unary("atan", sympy.atan, arb.atan,
       lambda F, args, y: (F.div(ONE, F.add(F.mul(args[0], args[0]), ONE)),),
       specials=(saturates("large |x|: x² overflows and the gradient 1/(1 + x²) becomes 0"),),
       conventions=pins.ATAN, findings=("atan-square-overflow", "atan-second-derivative-underflow"),
       saves="input", references=(ref((0.5,), lambda a: (1 / (1 + a**2),)),),
    interval_formulas=True)
add_unary("asin", sympy.asin, arb.asin,
       lambda F, args, y: (unary_kernel(F, F.sub(ONE, F.mul(args[0], args[0])).rsqrt(), 2),), U,
       intervals=(Interval(-1.0, 1.0, True, True),), specials=(edge("x = ±1", -1.0, 1.0),),
       conventions=pins.ASIN, references=(ref((0.5,), lambda a: (1 / mp.sqrt(1 - a**2),)),))
add_unary("acos", sympy.acos, arb.acos,
       lambda F, args, y: (-unary_kernel(F, F.sub(ONE, F.mul(args[0], args[0])).rsqrt(), 2),), U,
       intervals=(Interval(-1.0, 1.0, True, True),), specials=(edge("x = ±1", -1.0, 1.0),),
       conventions=pins.ACOS, references=(ref((0.5,), lambda a: (-1 / mp.sqrt(1 - a**2),)),))
add_unary("asinh", sympy.asinh, arb.asinh,
       lambda F, args, y: (unary_kernel(F, F.add(F.mul(args[0], args[0]), ONE).rsqrt(), 2),),
       specials=(saturates("large |x|: x² overflows and the gradient becomes 0"),), conventions=pins.ASINH,
       findings=("asinh-square-overflow", "asinh-second-derivative-underflow"),
       saves="input", references=(ref((0.5,), lambda a: (1 / mp.sqrt(1 + a**2),)),),
    interval_formulas=True)

# bfloat16/float16 erf on CPU runs Vectorized<float>::erf, the Abramowitz-Stegun 7.1.26 formula whose
# error bound 1.5e-7 is *absolute*: near 0 it loses every digit (bf16 erf(1e-10) = 0). That accuracy is
# modelled here, so such points come out unverified, and the loss itself is a registered finding
# (findings.toml: erf-half-precision-near-zero, cf. pytorch/pytorch#198183).
# The formula's own bound (1.5e-7) plus float32 evaluation of 1 - p(t)exp(-x^2), whose terms are near 1
# (a few roundings of 2^-24 each): bf16 erf(1.5e-7) returns 0, 1.7e-7 off.
ERF_HALF_ABSOLUTE_ERROR = 1.5e-7 + 4 * 2.0**-24
ERF_ULPS = 2


def _erf_forward(F, a):
    value = F.round(a.erf(), 2 * ERF_ULPS)
    if F.format.name in ("bfloat16", "float16"):
        value = F.in_range(value + arb(0, ERF_HALF_ABSOLUTE_ERROR))
    return value


# erf: 2.0 / sqrt(M_PI) * exp(-(self.pow(2))) * grad
add_op("erf", unary_spellings("erf", Spelling("torch.special.erf({0})", torch.special.erf)), sympy.erf, _erf_forward,
    lambda F, args, y: (F.mul(F.opmath.const(2 / 3.141592653589793**0.5),
                              unary_kernel(F, (-F.mul(args[0], args[0])).exp(), 2)),),
    (R,), ulps=ERF_ULPS, findings=("erf-bfloat16-near-zero",),
    saves="input", references=(ref((0.5,), lambda a: (2 / mp.sqrt(mp.pi) * mp.exp(-(a**2)),)),),
    interval_formulas=True)


def _sigmoid_grads(F, args, y):
    # sigmoid_backward_kernel (BinaryOpsKernel.cpp): grad * (1 - y) * y; its bfloat16 branch computes in float
    # and rounds once (the caller's product with grad), float16 rounds each operation (Vectorized<Half>).
    # Measured over every finite y of the dtype: bfloat16 equals the float32 kernel rounded once, float16 not.
    G = F.opmath if F.format.name == "bfloat16" else F
    return (G.mul(G.sub(ONE, y), y),)


add_unary("sigmoid", lambda a: 1 / (1 + sympy.exp(-a)), lambda a: 1 / (1 + (-a).exp()), _sigmoid_grads,
       spellings=unary_spellings("sigmoid", Spelling("torch.special.expit({0})", torch.special.expit),
                                  Spelling("torch.nn.functional.sigmoid({0})", torch_nn_functional.sigmoid)),
       ulps=2, specials=(saturates("large |x|: the result rounds to 0 or 1 and (1 - y) y to 0"),),
       conventions=pins.SIGMOID, findings=("tanh-sigmoid-saturation", "sigmoid-saturation", "sigmoid-subnormal-tail"),
       saves="result", references=(ref((0.5,), lambda a: (mp.exp(-a) / (1 + mp.exp(-a)) ** 2,)),),
    interval_formulas=True)

# softplus(beta=1, threshold=20) is linear above the threshold: that *is* the function torch computes.
SOFTPLUS_THRESHOLD = 20
SOFTPLUS_ULPS = 2


def _softplus_forward(F, a):
    if F.greater(a, arb(SOFTPLUS_THRESHOLD)):
        return a
    # log1p(exp(x)), in float for bfloat16 and float16, rounded once
    return F.store(F.opmath.round(a.exp().log1p(), 2 * SOFTPLUS_ULPS))


def _softplus_grads(F, args, y):
    # softplus_backward: z = exp(x); x > threshold ? grad : grad * z / (z + 1), in float for bfloat16 and
    # float16 (the caller's product with grad rounds it once)
    if F.greater(args[0], arb(SOFTPLUS_THRESHOLD)):
        return (ONE,)
    G = F.opmath
    z = G.round(args[0].exp(), 2)
    return (G.div(z, G.add(z, ONE)),)


add_op("softplus", [Spelling("torch.nn.functional.softplus({0})", torch_nn_functional.softplus)],
    lambda a: sympy.Piecewise((a, a > SOFTPLUS_THRESHOLD), (sympy.log(1 + sympy.exp(a)), True)),
    _softplus_forward, _softplus_grads, (R,), ulps=SOFTPLUS_ULPS, opinfo=("nn.functional.softplus",),
    specials=(kink("x = 20, torch's threshold: linear above it", float(SOFTPLUS_THRESHOLD)),),
    conventions=pins.SOFTPLUS,
    findings=("softplus-double-backward-threshold",),
    references=(ref((0.5,), lambda a: (1 / (1 + mp.exp(-a)),)),
                ref((25.0,), lambda a: (1,))))  # torch's softplus is linear above its threshold 20


def _abs_grads(F, args, y):
    return (arb(F.sign(args[0])),)


add_op("abs", [Spelling("abs({0})", abs), *unary_spellings("abs")[0:2]], sympy.Abs,
    lambda F, a: abs(a), _abs_grads, (NZ,), specials=(kink("x = 0", 0.0),), conventions=pins.ABS,
    findings=("abs-double-backward-zerotensor",),
    references=(ref((-1.5,), lambda a: (-1,)), ref((1.5,), lambda a: (1,))),
    interval_formulas=True)


# ---------------------------------------------------------------- binary, non-arithmetic
# atan2_backward: recip = (self * self + other * other).reciprocal(); grad * other * recip, grad * -self * recip
def _atan2_grads(F, args, y):
    a, b = args
    recip = F.div(ONE, F.add(F.mul(a, a), F.mul(b, b)))
    return (F.mul(b, recip), -F.mul(a, recip))


ATAN2_ULPS = 2


def _atan2_forward(F, y, x):
    # The value jumps across the branch cut y = 0, x < 0 (and ±0 pick the side). atan2_kernel: in float for
    # bfloat16 and float16, rounded once (measured, as unary_kernel's)
    if y.contains(0) and not x > 0:
        raise Singular("atan2 on its branch cut")
    return unary_kernel(F, arb.atan2(y, x), 2 * ATAN2_ULPS)


def _atan2_partials(y, x):
    """∂/∂y = x / (x² + y²), ∂/∂x = -y / (x² + y²)."""
    return (x / (x**2 + y**2), -y / (x**2 + y**2))


# y bounded away from 0: every quadrant, never the origin nor the branch cut.
add_op("atan2", binary_spellings("atan2", const_second=False)
    + [Spelling("torch.arctan2({0}, {1})", torch.arctan2, const_second=False)],
    sympy.atan2, _atan2_forward, _atan2_grads, (NZ, R), ulps=ATAN2_ULPS,
    specials=(Special(Kind.BRANCH_CUT, "x0 = 0, x1 < 0", arg=None),
              Special(Kind.POLE, "the origin (0, 0)", arg=None)),
    conventions=pins.ATAN2,
    findings=("atan2-denominator-range", "atan2-mixed-partial-underflow", "forward-mode-zero-tangent-times-inf"),
    references=(ref((0.75, -1.25), _atan2_partials), ref((-0.75, -1.25), _atan2_partials)))  # quadrants 2, 3
HYPOT_ULPS = 1
# hypot: grad * self / result, grad * other / result
add_op("hypot", binary_spellings("hypot", const_second=False),
    lambda a, b: sympy.sqrt(a**2 + b**2),
    lambda F, a, b: unary_kernel(F, (a * a + b * b).sqrt(), 2 * HYPOT_ULPS),  # in float for bfloat16/float16
    lambda F, args, y: (F.div(args[0], y), F.div(args[1], y)), (R, NZ), ulps=HYPOT_ULPS,
    specials=(kink("the origin (0, 0), a cone", arg=None),), conventions=pins.HYPOT,
    findings=("hypot-origin-nan",),
    references=(ref((0.75, -1.25), lambda a, b: (a / mp.sqrt(a**2 + b**2), b / mp.sqrt(a**2 + b**2))),))


def _logaddexp_forward(F, a, b):
    # torch: m = max(a, b); m + log1p(exp(-|a - b|)), in float for bfloat16 and float16 (logaddexp_kernel's
    # reduced-type branch), rounded once. The final sum can cancel (a = b = -log 2 / 2), so the kernel is
    # accurate relative to |m| + log1p(...), not to the result.
    G = F.opmath
    m = a.max(b)
    tail = G.round(G.round((-abs(G.sub(a, b))).exp(), 2).log1p(), 2)
    return F.store(G.add(m, tail))


# logaddexp: grad / (1 + exp(other - self)), grad / (1 + exp(self - other))
add_op("logaddexp", binary_spellings("logaddexp", const_second=False),
    lambda a, b: sympy.log(sympy.exp(a) + sympy.exp(b)),
    _logaddexp_forward,
    lambda F, args, y: (F.div(ONE, F.add(ONE, F.round(F.sub(args[1], args[0]).exp(), 2))),
                        F.div(ONE, F.add(ONE, F.round(F.sub(args[0], args[1]).exp(), 2)))),
    (R, R), ulps=2, conventions=pins.LOGADDEXP,
    references=(ref((0.75, -1.25),
                    lambda a, b: (mp.exp(a) / (mp.exp(a) + mp.exp(b)), mp.exp(b) / (mp.exp(a) + mp.exp(b)))),))


def _select_grads(first_wins: Callable[[arb, arb], bool]):
    def grads(F, args, y):
        return (ONE, arb(0)) if first_wins(F, *args) else (arb(0), ONE)

    return grads


def _select_tangent(self_wins):
    """derivatives.yaml's forward derivative of maximum/minimum/fmax/fmin: other_t + mask * (self_t - other_t),
    mask = 1 where `self_wins(self, other)`. Not other_t or self_t: the subtraction and addition round, so the
    tangent loses |other_t| * u (jvp of max(2, 1) with tangents (1e-20, 1) is 0, not 1e-20)."""

    def rule(JF, values, tangents):
        mask = 1 if self_wins(JF, values[0], values[1]) else 0
        return JF.add(tangents[1], JF.sub(tangents[0], tangents[1]) * mask)

    return rule


_TIE = Special(Kind.TIE, "x0 = x1", arg=None)
add_op("maximum", binary_spellings("maximum", const_second=False)
    + [Spelling("torch.max({0}, {1})", torch.max, const_second=False)],
    sympy.Max, lambda F, a, b: a if F.greater(a, b) else b,
    _select_grads(lambda F, a, b: F.greater(a, b)), (R, R), operands=ORDERED, opinfo=("maximum", "max[binary]"),
    specials=(_TIE,), conventions=pins.MAXIMUM, forward_tangent=_select_tangent(lambda F, a, b: F.greater(a, b)),
    findings=("maximum-jvp-cancels",),
    references=(ref((0.75, -1.25), lambda a, b: (1, 0)), ref((-1.25, 0.75), lambda a, b: (0, 1))),
    interval_formulas=True)
add_op("minimum", binary_spellings("minimum", const_second=False)
    + [Spelling("torch.min({0}, {1})", torch.min, const_second=False)],
    sympy.Min, lambda F, a, b: b if F.greater(a, b) else a,
    _select_grads(lambda F, a, b: not F.greater(a, b)), (R, R), operands=ORDERED, opinfo=("minimum", "min[binary]"),
    specials=(_TIE,), conventions=pins.MINIMUM, forward_tangent=_select_tangent(lambda F, a, b: F.greater(b, a)),
    references=(ref((0.75, -1.25), lambda a, b: (0, 1)),),
    interval_formulas=True)
# fmax/fmin: maximum/minimum that ignore NaN; their backward sends a tie's gradient to `self` only.
add_op("fmax", [Spelling("torch.fmax({0}, {1})", torch.fmax, const_second=False),
             Spelling("{0}.fmax({1})", lambda a, b: a.fmax(b), const_second=False)],
    sympy.Max, lambda F, a, b: a if F.greater(a, b) else b,
    _select_grads(lambda F, a, b: F.greater(a, b)), (R, R), operands=ORDERED,
    specials=(_TIE,), conventions=pins.FMAX, forward_tangent=_select_tangent(lambda F, a, b: F.greater(a, b)),
    findings=("fmax-fmin-tie",),
    references=(ref((0.75, -1.25), lambda a, b: (1, 0)),),
    interval_formulas=True)
add_op("fmin", [Spelling("torch.fmin({0}, {1})", torch.fmin, const_second=False),
             Spelling("{0}.fmin({1})", lambda a, b: a.fmin(b), const_second=False)],
    sympy.Min, lambda F, a, b: b if F.greater(a, b) else a,
    _select_grads(lambda F, a, b: not F.greater(a, b)), (R, R), operands=ORDERED,
    specials=(_TIE,), conventions=pins.FMIN, forward_tangent=_select_tangent(lambda F, a, b: not F.greater(a, b)),
    findings=("fmax-fmin-tie",),
    references=(ref((0.75, -1.25), lambda a, b: (0, 1)),),
    interval_formulas=True)

# ---------------------------------------------------------------- kinks, bounds and steps
# Every kink is decided by `F.sign`/`F.greater`, which raise `Singular` when the argument's ball may
# touch it; the domains keep generated arguments away from the kinks by construction.
OFF_PARAMETERS, OFF_INTEGERS, OFF_HALF_INTEGERS = (
    Domain.OFF_PARAMETERS, Domain.OFF_INTEGERS, Domain.OFF_HALF_INTEGERS)
ZERO = arb(0)


def nn_spelling(name: str) -> Spelling:
    return Spelling(f"torch.nn.functional.{name}({{0}})", getattr(torch_nn_functional, name))


# relu: threshold_backward(grad, result, 0), i.e. 0 where result <= 0
add_op("relu", unary_spellings("relu") + [nn_spelling("relu")], lambda a: sympy.Max(a, 0),
    lambda F, a: a if F.sign(a) > 0 else ZERO,
    lambda F, args, y: (ONE if F.sign(args[0]) > 0 else ZERO,), (NZ,), opinfo=("nn.functional.relu",),
    specials=(kink("x = 0", 0.0),), conventions=pins.RELU,
    references=(ref((0.5,), lambda a: (1,)), ref((-0.5,), lambda a: (0,))),
    interval_formulas=True)
# sign, floor, ceil, trunc, round: zeros_like(grad)
add_op("sign", unary_spellings("sign"), sympy.sign,
    lambda F, a: arb(F.sign(a)), lambda F, args, y: (ZERO,), (NZ,),
    specials=(Special(Kind.JUMP, "x = 0", 0, (0.0,)),), conventions=pins.SIGN,
    references=(ref((-0.5,), lambda a: (0,)),))


def jumps(where: str, first: float) -> Special:
    return Special(Kind.JUMP, where, 0, (first,), period=1.0)


def _step_op(name: str, sympy_fn, domain: Domain, jumps: Special, conventions, reference: Reference,
             *more: Spelling, opinfo=None) -> None:
    step = STEP_EVALUATORS[sympy_fn]
    add_op(name, unary_spellings(name, *more), sympy_fn, lambda F, a: step(a), lambda F, args, y: (ZERO,), (domain,),
        specials=(jumps,), conventions=conventions, references=(reference,), opinfo=opinfo)


_step_op("floor", Floor, OFF_INTEGERS, jumps("the integers", 0.0), pins.FLOOR, ref((1.25,), lambda a: (0,)))
_step_op("ceil", Ceil, OFF_INTEGERS, jumps("the integers", 0.0), pins.CEIL, ref((-1.25,), lambda a: (0,)))
_step_op("trunc", Trunc, OFF_INTEGERS, jumps("the nonzero integers", 1.0), pins.TRUNC, ref((2.75,), lambda a: (0,)))
# round(x, decimals=0) is round(x): round_decimals_out calls the same kernel
_step_op("round", RoundHalfEven, OFF_HALF_INTEGERS, jumps("the half-integers", 0.5), pins.ROUND,
         ref((1.25,), lambda a: (0,)), Spelling("torch.round({0}, decimals=0)", lambda a: torch.round(a, decimals=0)),
         opinfo=("round", "round[decimals_0]"))
# frac = self - trunc(self) (exact in floating point); frac: grad
add_op("frac", unary_spellings("frac"), lambda a: a - Trunc(a),
    lambda F, a: F.sub(a, STEP_EVALUATORS[Trunc](a)), lambda F, args, y: (ONE,), (OFF_INTEGERS,),
    specials=(jumps("the nonzero integers", 1.0),), conventions=pins.FRAC,
    references=(ref((-1.25,), lambda a: (1,)),))


def _inside(F, a, lower, upper) -> bool:
    """lower < a < upper (either bound may be None), deciding ties as `Singular`."""
    return (lower is None or F.greater(a, lower)) and (upper is None or F.greater(upper, a))


def _clamp_forward(lower_arg, upper_arg):
    def forward(F, a, *bounds):
        lower = bounds[lower_arg - 1] if lower_arg else None
        upper = bounds[upper_arg - 1] if upper_arg else None
        if lower is not None and not F.greater(a, lower):
            return lower
        if upper is not None and not F.greater(upper, a):
            return upper
        return a

    return forward


def _clamp_grads(lower_arg, upper_arg):
    # clamp_backward: grad * ((self >= min) & (self <= max)); hardtanh_backward: 0 where self <= min or
    # self >= max. They differ only at the bounds themselves, which are Singular here.
    def grads(F, args, y):
        lower = args[lower_arg] if lower_arg else None
        upper = args[upper_arg] if upper_arg else None
        return (ONE if _inside(F, args[0], lower, upper) else ZERO,) + (ZERO,) * (len(args) - 1)

    return grads


_AT_THE_BOUNDS = kink("x0 = a bound (the constant arguments)")
CLAMP_BOUNDS = ((0.0, 1.0), (-1.0, 1.0), (-2.0, 0.5))
add_op("clamp", [Spelling("torch.clamp({0}, {1}, {2})", torch.clamp),
              Spelling("{0}.clamp({1}, {2})", lambda a, lo, hi: a.clamp(lo, hi)),
              Spelling("torch.clip({0}, {1}, {2})", torch.clip)],
    lambda a, lo, hi: sympy.Min(sympy.Max(a, lo), hi), _clamp_forward(1, 2), _clamp_grads(1, 2),
    (OFF_PARAMETERS, R, R), operands=PARAMETERS, parameters=CLAMP_BOUNDS,
    specials=(_AT_THE_BOUNDS,), conventions=pins.CLAMP,
    findings=("clamp-bound-subgradient",),
    references=(ref((0.25, 0.0, 1.0), lambda a, lo, hi: (1,)), ref((1.5, 0.0, 1.0), lambda a, lo, hi: (0,))),
    interval_formulas=True)
add_op("clamp_min", [Spelling("torch.clamp_min({0}, {1})", torch.clamp_min),
                  Spelling("{0}.clamp_min({1})", lambda a, lo: a.clamp_min(lo)),
                  Spelling("torch.clamp({0}, {1})", torch.clamp)],
    sympy.Max, _clamp_forward(1, 0), _clamp_grads(1, 0),
    (OFF_PARAMETERS, R), operands=PARAMETERS, parameters=((0.0,), (-1.0,), (0.5,)),
    specials=(_AT_THE_BOUNDS,), conventions=pins.CLAMP_MIN,
    findings=("clamp-bound-subgradient",),
    references=(ref((-0.5, 0.0), lambda a, lo: (0,)), ref((0.75, -1.0), lambda a, lo: (1,))),
    interval_formulas=True)
add_op("clamp_max", [Spelling("torch.clamp_max({0}, {1})", torch.clamp_max),
                  Spelling("{0}.clamp_max({1})", lambda a, hi: a.clamp_max(hi)),
                  Spelling("torch.clamp({0}, max={1})", lambda a, hi: torch.clamp(a, max=hi))],
    sympy.Min, _clamp_forward(0, 1), _clamp_grads(0, 1),
    (OFF_PARAMETERS, R), operands=PARAMETERS, parameters=((0.0,), (1.0,), (-0.5,)),
    specials=(_AT_THE_BOUNDS,), conventions=pins.CLAMP_MAX,
    findings=("clamp-bound-subgradient",),
    references=(ref((0.25, 0.0), lambda a, hi: (0,)), ref((-0.75, -0.5), lambda a, hi: (1,))),
    interval_formulas=True)
add_op("hardtanh", [Spelling("torch.nn.functional.hardtanh({0}, {1}, {2})", torch_nn_functional.hardtanh)],
    lambda a, lo, hi: sympy.Min(sympy.Max(a, lo), hi), _clamp_forward(1, 2), _clamp_grads(1, 2),
    (OFF_PARAMETERS, R, R), operands=PARAMETERS, parameters=((-1.0, 1.0), (0.0, 6.0), (-2.0, 0.5)),
    opinfo=("nn.functional.hardtanh",), specials=(_AT_THE_BOUNDS,), conventions=pins.HARDTANH,
    references=(ref((0.5, -1.0, 1.0), lambda a, lo, hi: (1,)), ref((7.0, 0.0, 6.0), lambda a, lo, hi: (0,))),
    interval_formulas=True)


# leaky_relu: self > 0 ? grad : grad * negative_slope
add_op("leaky_relu", [Spelling("torch.nn.functional.leaky_relu({0}, {1})", torch_nn_functional.leaky_relu)],
    lambda a, slope: sympy.Piecewise((a, a > 0), (slope * a, True)),
    lambda F, a, slope: a if F.sign(a) > 0 else F.mul(a, slope),
    lambda F, args, y: ((ONE if F.sign(args[0]) > 0 else args[1]), ZERO),
    (NZ, R), operands=PARAMETERS, parameters=((0.01,), (0.25,), (0.5,)), opinfo=("nn.functional.leaky_relu",),
    specials=(kink("x0 = 0", 0.0),), conventions=pins.LEAKY_RELU,
    findings=("concave-kink-left-slope",),
    references=(ref((-0.5, 0.25), lambda a, slope: (slope,)), ref((0.5, 0.01), lambda a, slope: (1,))),
    interval_formulas=True)
ELU_ULPS = 1


def elu_expm1(F, a):
    """exp(a) - 1 as elu's kernels compute it: expm1 (aten/src/ATen/native/cpu/Elu.h) or exp(a) - 1 (older
    versions, CUDA); the union encloses both."""
    k = 2 * ELU_ULPS
    return F.round(a.expm1(), k).union(F.sub(F.round(a.exp(), k), ONE))


def _elu_forward(F, a, alpha):
    if F.sign(a) > 0:
        return a
    # negcoef * expm1(x * negiptcoef), in float for bfloat16 and float16, rounded once; alpha is exact
    return F.store(F.opmath.mul(alpha, elu_expm1(F.opmath, a)))


def _elu_grads(F, args, y):
    # elu_backward (is_result=False): x <= 0 ? grad * input_scale * alpha * exp(x * input_scale) : grad, in
    # float for bfloat16 and float16 (Activation.cpp), rounded once
    a, alpha = args
    if F.sign(a) > 0:
        return (ONE, ZERO)
    return (F.opmath.mul(alpha, F.opmath.round(a.exp(), 2 * ELU_ULPS)), ZERO)


add_op("elu", [Spelling("torch.nn.functional.elu({0}, {1})", torch_nn_functional.elu)],
    lambda a, alpha: sympy.Piecewise((a, a > 0), (alpha * (sympy.exp(a) - 1), True)),
    _elu_forward, _elu_grads, (NZ, R), operands=PARAMETERS, parameters=((1.0,), (0.5,), (2.0,)), ulps=ELU_ULPS,
    opinfo=("nn.functional.elu",), specials=(kink("x0 = 0 (unless alpha = 1)", 0.0),), conventions=pins.ELU,
    findings=("concave-kink-left-slope",),
    references=(ref((-0.5, 2.0), lambda a, alpha: (alpha * mp.exp(a),)), ref((0.75, 1.0), lambda a, alpha: (1,))),
    interval_formulas=True)


def pi_rounded(F) -> arb:
    """torch's M_PI as a kernel sees it: π rounded to opmath (the exact π lies in the same ball). A double
    scalar multiplied into a bfloat16/float16 tensor stays float (`OpSpec.opmath_scalars`), and sinc's
    kernel multiplies by c10::pi<opmath_t>."""
    return F.opmath.round(arb.pi())


SINC_ULPS = 1


def _sinc_forward(F, a):
    # sinc_kernel: product = pi * a; sin(product) / product, in float for bfloat16 and float16, rounded once
    # (measured: equal to the float32 kernel rounded once for every finite bfloat16 and float16 a)
    G = F.opmath
    product = G.mul(pi_rounded(F), a)
    return F.store(G.div(G.round(product.sin(), 2 * SINC_ULPS), product))


def _sinc_grads(F, args, y):
    # sinc_backward: self_pi = self * pi; self_squared_pi = self * self * pi;
    # out = grad * (self_pi * cos(self_pi) - sin(self_pi)) / self_squared_pi, 0 where self_squared_pi == 0
    x = args[0]
    self_pi = F.mul(x, pi_rounded(F))
    squared_pi = F.mul(F.mul(x, x), pi_rounded(F))
    if squared_pi.contains(0):
        raise Singular("self * self * pi may underflow to 0, where torch returns 0")
    k = 2 * SINC_ULPS
    numerator = F.sub(F.mul(self_pi, F.round(self_pi.cos(), k)), F.round(self_pi.sin(), k))
    return (F.div(numerator, squared_pi),)


add_op("sinc", unary_spellings("sinc", Spelling("torch.special.sinc({0})", torch.special.sinc)),
    lambda a: sympy.sin(sympy.pi * a) / (sympy.pi * a), _sinc_forward, _sinc_grads, (NZ,), ulps=SINC_ULPS,
    specials=(Special(Kind.REMOVABLE, "x = 0: sin(πx)/(πx) is 0/0, sinc(0) = 1", 0, (0.0,)),), conventions=pins.SINC,
    # sinc's backward formula (x π cos(x π) - sin(x π)) / (x² π) cancels, and its derivative cancels again
    # (π cos(x π) appears twice with opposite signs): with bfloat16's u = 2^-8, the enclosure is wider than
    # the value at ~57% of points (80 examples, thorough). Covered in compositions.
    skips=(Skip("test_op_second_derivative", "bfloat16",
                "sinc's backward formula cancels twice; bfloat16 leaves ~57% of its second derivatives "
                "unverifiable"),),
    # sinc(x) = sin(πx)/(πx): derivative (πx cos(πx) - sin(πx)) / (πx²)
    findings=("sinc-cancellation-near-zero", "sinc-pi-x-overflow", "sinc-rounded-phase",
              "sinc-double-backward-at-zero"),
    references=(ref((0.75,), lambda a: ((mp.pi * a * mp.cos(mp.pi * a) - mp.sin(mp.pi * a)) / (mp.pi * a**2),)),))
# atanh: grad * 1 / (1 - self.pow(2))
add_unary("atanh", sympy.atanh, arb.atanh,
       lambda F, args, y: (F.div(ONE, F.sub(ONE, F.mul(args[0], args[0]))),), U,
       spellings=unary_spellings("atanh", Spelling("torch.arctanh({0})", torch.arctanh)),
       intervals=(Interval(-1.0, 1.0),), specials=(pole("x = ±1", -1.0, 1.0),), conventions=pins.ATANH,
       references=(ref((0.5,), lambda a: (1 / (1 - a**2),)),))
GELU_ULPS = 2


def _gelu_cdf(F, a):
    """0.5 * (1 + erf(x * M_SQRT1_2)). Below float64 the kernels run Vectorized<float>::erf (bfloat16 and float16
    convert to float), the formula with an absolute error (as torch.erf's half-precision kernels): measured on
    4,800 points of [-8, 8] in float32, 62 forward and 147 gradient values lay outside the model with a 2-ulp
    erf, none with the absolute error added."""
    scaled = F.mul(a, F.round(1 / arb(2).sqrt()))
    erf = F.round(scaled.erf(), 2 * GELU_ULPS)
    if F.format.name != "float64":
        erf = F.in_range(erf + arb(0, ERF_HALF_ABSOLUTE_ERROR))
    return F.mul(arb(0.5), F.add(ONE, erf))


def _gelu_grads(F, args, y):
    # gelu_backward (approximate='none'): cdf + x * exp(-0.5 * x * x) * M_2_SQRTPI * M_SQRT1_2 * 0.5
    a = args[0]
    pdf = F.mul(F.round((F.mul(arb(-0.5), F.mul(a, a))).exp(), 2 * GELU_ULPS),
                F.round(1 / (2 * arb.pi()).sqrt()))
    return (F.add(_gelu_cdf(F, a), F.mul(a, pdf)),)


add_op("gelu", [nn_spelling("gelu")], lambda a: a * (1 + sympy.erf(a / sympy.sqrt(2))) / 2,
    lambda F, a: F.mul(a, _gelu_cdf(F, a)), _gelu_grads, (R,), ulps=GELU_ULPS, opinfo=("nn.functional.gelu",),
    conventions=pins.GELU, findings=("gelu-cdf-cancellation", "bfloat16-subnormal-flush"),
    references=(ref((0.75,), lambda a: (mp.ncdf(a) + a * mp.npdf(a),)),),
    interval_formulas=True)

# ---------------------------------------------------------------- base-2 and base-10 exponentials and logarithms
# torch's constants M_LN2 and M_LN10 as the kernels multiplying by them see them: rounded to opmath (the
# exact value lies in the same ball; see `OpSpec.opmath_scalars`).


def ln_rounded(F, base: int) -> arb:
    return F.opmath.round(arb(base).log())


# exp2: grad * result * M_LN2
add_unary("exp2", lambda a: 2**a, lambda a: arb(2) ** a, lambda F, args, y: (F.mul(y, ln_rounded(F, 2)),), B,
       references=(ref((0.75,), lambda a: (2**a * mp.log(2),)),))
# log2: grad / (self * M_LN2); log10: grad / (self * M_LN10)
add_unary("log2", lambda a: sympy.log(a) / sympy.log(2), lambda a: a.log() / arb(2).log(),
       lambda F, args, y: (F.div(ONE, F.mul(args[0], ln_rounded(F, 2))),), P,
       intervals=(POSITIVE_REALS,), specials=(pole("x = 0", 0.0),), conventions=pins.LOG2,
       references=(ref((1.25,), lambda a: (1 / (a * mp.log(2)),)),),
    interval_formulas=True)
add_unary("log10", lambda a: sympy.log(a) / sympy.log(10), lambda a: a.log() / arb(10).log(),
       lambda F, args, y: (F.div(ONE, F.mul(args[0], ln_rounded(F, 10))),), P,
       intervals=(POSITIVE_REALS,), specials=(pole("x = 0", 0.0),), conventions=pins.LOG10,
       findings=("log10-bfloat16-subnormal-reciprocal-overflow",),
       references=(ref((1.25,), lambda a: (1 / (a * mp.log(10)),)),),
    interval_formulas=True)


def op_named(name: str) -> OpSpec:
    try:
        return OPS[name]
    except KeyError:
        raise ValueError(f"unknown op {name!r}; the op table has {', '.join(sorted(OPS))}") from None
