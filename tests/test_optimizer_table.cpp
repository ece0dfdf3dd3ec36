// The optimizers' tables (src/core/optimizers.c): what the public
// description says of every hyperparameter holds (defaults in range, values
// set and read back by name, out-of-range values refused with the range),
// and the update rule a backend gets, which keys a recorded step, changes
// with every hyperparameter but the learning rate.
#include <cmath>
#include <cstring>
#include <string>

#include "test_util.h"
extern "C" {
#include "core/optimizer.h"
}

namespace {

std::vector<bp_optimizer_type> all_types()
{
    std::vector<bp_optimizer_type> out;
    for (int t = 0; bp_optimizer_name((bp_optimizer_type)t) != nullptr; t++)
        out.push_back((bp_optimizer_type)t);
    return out;
}

std::vector<bp_hyperparam> params_of(bp_optimizer_type type)
{
    int count = -1;
    EXPECT_EQ(bp_optimizer_hyperparams(type, &count), BP_OK);
    std::vector<bp_hyperparam> out((size_t)count);
    for (int i = 0; i < count; i++)
        EXPECT_EQ(bp_optimizer_hyperparam(type, i, &out[(size_t)i]), BP_OK) << bp_last_error();
    return out;
}

// A value inside the range other than the default (switches flip).
double another_value(const bp_hyperparam &h)
{
    if (h.kind == BP_HYPERPARAM_SWITCH)
        return h.default_value == 0.0 ? 1.0 : 0.0;
    double hi = std::isfinite(h.max) ? h.max : h.min + 10.0;
    double v = 0.5 * (h.min + hi);
    return v == h.default_value ? 0.25 * (h.min + hi) : v;
}

TEST(OptimizerTable, EveryHyperparameterIsDescribedAndChecked)
{
    ASSERT_GE(all_types().size(), 3u);
    for (bp_optimizer_type type : all_types()) {
        std::string tn = bp_optimizer_name(type);
        std::vector<bp_hyperparam> ps = params_of(type);
        ASSERT_FALSE(ps.empty()) << tn;
        bp_optimizer o;
        bp_optimizer_init(&o, type);
        EXPECT_EQ(bp_optimizer_validate(&o), BP_OK) << tn << ": " << bp_last_error();
        bool has_lr = false;
        for (const bp_hyperparam &h : ps) {
            std::string what = tn + " " + h.name;
            has_lr = has_lr || std::string(h.name) == "lr";
            EXPECT_EQ(h.struct_size, sizeof h);
            ASSERT_NE(h.flag, nullptr) << what;
            EXPECT_EQ(std::string(h.flag).rfind("--", 0), 0u) << what;
            ASSERT_NE(h.help, nullptr) << what;
            ASSERT_NE(h.range, nullptr) << what;
            double v = -1;
            ASSERT_EQ(bp_optimizer_get_value(&o, h.name, &v), BP_OK) << what;
            EXPECT_EQ(v, h.default_value) << what << ": bp_optimizer_init's value is the default";
            // Another value in range is taken and read back.
            bp_optimizer c = o;
            double w = another_value(h);
            ASSERT_EQ(bp_optimizer_set_value(&c, h.name, w), BP_OK) << what << " " << w;
            ASSERT_EQ(bp_optimizer_get_value(&c, h.name, &v), BP_OK);
            EXPECT_EQ(v, w) << what;
            // Below the range (every range here starts at 0) and NaN are refused, naming it.
            EXPECT_FAILS(bp_optimizer_set_value(&c, h.name, -1.0), BP_ERR_INVALID_ARGUMENT,
                         std::string(h.name) + " -1 must be " + h.range);
            EXPECT_FAILS(bp_optimizer_set_value(&c, h.name, NAN), BP_ERR_INVALID_ARGUMENT, h.name);
            ASSERT_EQ(bp_optimizer_get_value(&c, h.name, &v), BP_OK);
            EXPECT_EQ(v, w) << what << ": a refused value changes nothing";
        }
        EXPECT_TRUE(has_lr) << tn << " has no learning rate";
        EXPECT_FAILS(bp_optimizer_set_value(&o, "no_such", 1.0), BP_ERR_INVALID_ARGUMENT,
                     "no hyperparameter 'no_such'");
    }
    bp_hyperparam h;
    EXPECT_FAILS(bp_optimizer_hyperparam(BP_OPTIMIZER_SGD, 99, &h), BP_ERR_INVALID_ARGUMENT,
                 "index 99");
    EXPECT_FAILS(bp_optimizer_hyperparams((bp_optimizer_type)99, nullptr), BP_ERR_INVALID_ARGUMENT,
                 "NULL");
}

// A caller compiled with a smaller bp_hyperparam gets the fields it knows
// and nothing past them is written.
TEST(OptimizerTable, DescriptionFillsOnlyTheCallersStruct)
{
    struct small {
        size_t struct_size;
        const char *name, *flag;
    };
    union {
        small s;
        unsigned char bytes[sizeof(bp_hyperparam) + 16];
    } u;
    std::memset(u.bytes, 0xAB, sizeof u.bytes);
    ASSERT_EQ(bp_optimizer_hyperparam_sized(BP_OPTIMIZER_ADAM, 0,
                                            reinterpret_cast<bp_hyperparam *>(&u), sizeof(small)),
              BP_OK);
    EXPECT_EQ(u.s.struct_size, sizeof(small));
    EXPECT_STREQ(u.s.name, "lr");
    EXPECT_STREQ(u.s.flag, "--lr");
    for (size_t i = sizeof(small); i < sizeof u.bytes; i++)
        ASSERT_EQ(u.bytes[i], 0xAB) << "byte " << i << " was written";
}

// The rule a backend gets holds every hyperparameter but lr: a recorded
// step (train.c) replays while the rule is byte for byte the same, so a
// change of any other hyperparameter must change the rule.
TEST(OptimizerTable, TheUpdateRuleHoldsEveryHyperparameterButTheLearningRate)
{
    for (bp_optimizer_type type : all_types()) {
        bp_optimizer o;
        bp_optimizer_init(&o, type);
        bp_update_rule base;
        bp_optimizer_rule(&o, &base);
        for (const bp_hyperparam &h : params_of(type)) {
            bp_optimizer c = o;
            ASSERT_EQ(bp_optimizer_set_value(&c, h.name, another_value(h)), BP_OK);
            bp_update_rule r;
            bp_optimizer_rule(&c, &r);
            bool same = std::memcmp(&r, &base, sizeof r) == 0;
            EXPECT_EQ(same, std::string(h.name) == "lr") << bp_optimizer_name(type) << " " << h.name;
        }
        // Fields the type does not read do not reach the rule.
        bp_optimizer junk = o;
        int foreign = 0;
        for (bp_optimizer_type other : all_types()) {
            const bp_optimizer_kind *k = bp_optimizer_kind_of(other);
            for (int i = 0; i < k->n_hp; i++)
                if (bp_optimizer_row(bp_optimizer_kind_of(type), k->hp[i].pub.name) == nullptr)
                    bp_hp_set(&junk, &k->hp[i], 1.0), foreign++;
        }
        EXPECT_GT(foreign, 0);
        bp_update_rule r;
        bp_optimizer_rule(&junk, &r);
        EXPECT_EQ(std::memcmp(&r, &base, sizeof r), 0) << bp_optimizer_name(type);
    }
}

} // namespace
