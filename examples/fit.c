/* Trains Fashion-MNIST (or, where it is absent, generated spirals) with the
 * library's trainer: a tenth of the training set held out for validation,
 * early stopping on its loss with the best epoch's parameters kept, then
 * the test set's accuracy. */
#include <backprop.h>
#include <stdio.h>

static void on_epoch(void *user, const bp_trainer_epoch *e) /* user: a name for the run */
{
    printf("%s epoch %lld  train loss %.4f  validation loss %.4f, accuracy %.2f%%\n", (char *)user,
           (long long)e->epoch, e->train_loss, e->val_loss, 100 * e->val_accuracy);
}

int main(void)
{
    bp_dataset *train = NULL, *test = NULL;
    if (bp_dataset_load_fashion_mnist(NULL, BP_F32, &train, &test) != BP_OK &&
        (bp_dataset_spirals(3000, 1, BP_F32, &train) || bp_dataset_spirals(1500, 2, BP_F32, &test)))
        return fprintf(stderr, "backprop: %s\n", bp_last_error()), 1;
    bp_dataset_desc d;
    bp_dataset_describe(train, &d);
    int sizes[] = {d.n_features, 256, 128, d.n_classes}, gpus = 0;
    bp_activation acts[] = {BP_ACT_RELU, BP_ACT_RELU, BP_ACT_IDENTITY};
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = 3, cfg.sizes = sizes, cfg.activations = acts, cfg.loss = BP_LOSS_CROSS_ENTROPY;
    cfg.backend = (bp_cuda_device_count(&gpus), gpus > 0) ? BP_BACKEND_CUDA : BP_BACKEND_CPU;
    bp_optimizer opt;
    bp_optimizer_init(&opt, BP_OPTIMIZER_SGD);
    opt.lr = 0.02, opt.momentum = 0.9;
    bp_trainer_config tc;
    bp_trainer_config_init(&tc);
    tc.epochs = 15, tc.schedule = BP_SCHEDULE_COSINE, tc.on_epoch = on_epoch, tc.user = "fit:";
    tc.validation_fraction = 0.1, tc.patience = 3; /* restore_best is on by default */
    bp_network *net = NULL;
    bp_trainer *trainer = NULL;
    bp_evaluation ev;
    if (bp_network_create(&cfg, &net) || bp_network_set_optimizer(net, &opt) ||
        bp_trainer_create(net, train, NULL, &tc, &trainer) || bp_trainer_fit(trainer, NULL) ||
        bp_network_evaluate_dataset(net, test, NULL, &ev))
        return fprintf(stderr, "backprop: %s\n", bp_last_error()), 1;
    printf("test accuracy %.2f%%\n", 100 * ev.accuracy);
    bp_trainer_free(trainer), bp_network_free(net); /* the trainer first */
    bp_dataset_free(train), bp_dataset_free(test);
    return 0;
}
