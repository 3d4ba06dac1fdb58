"""latent-probe: interpret and edit the latent spaces of GAN image generators."""
__version__ = "0.1.0"
