package bh.hapi;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.binary.api.IBinaryStorageSvc;
import ca.uhn.fhir.jpa.binstore.MemoryBinaryStorageSvcImpl;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import jakarta.persistence.EntityManagerFactory;
import java.util.Properties;
import javax.sql.DataSource;
import org.apache.commons.dbcp2.BasicDataSource;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

/**
 * The Spring configuration of HAPI's JPA server for R4: HAPI's own configuration classes plus the beans an
 * application must supply (database, entity manager, transaction manager, settings). Settings are HAPI's
 * defaults, as on the public test server, except where a comment says otherwise.
 */
@Configuration
@Import({
  JpaR4Config.class,
  HapiJpaConfig.class,
  JpaBatch2Config.class,
  Batch2JobsConfig.class,
  ThreadPoolFactoryConfig.class, // the thread pool a transaction uses (HAPI 8 asks for it even when idle)
  SubscriptionChannelConfig.class // the in-memory message broker that HAPI 8 wires in even without subscriptions
})
public class JpaConfig {

  @Bean
  public DataSource dataSource() {
    BasicDataSource dataSource = new BasicDataSource();
    dataSource.setDriver(new org.h2.Driver());
    // In memory, gone when the process exits; DB_CLOSE_DELAY keeps it while the pool has no open connection.
    dataSource.setUrl("jdbc:h2:mem:bh-hapi;DB_CLOSE_DELAY=-1");
    dataSource.setUsername("sa");
    dataSource.setPassword("");
    dataSource.setMaxTotal(10);
    return dataSource;
  }

  @Bean
  public JpaStorageSettings storageSettings() {
    JpaStorageSettings settings = new JpaStorageSettings();
    // POST [root]/__admin/reset empties the server with $expunge everything, which HAPI disables by default.
    settings.setExpungeEnabled(true);
    settings.setAllowMultipleDelete(true);
    // A search answers from the database every time: after a reset an identical search must not be served
    // from the previous session's cached results (HAPI reuses them for 60 s by default).
    settings.setReuseCachedSearchResultsForMillis(null);
    // Scheduled jobs (stale search cleanup, reindexing, batch maintenance) are not needed by a test peer and
    // would only add log noise and CPU on a 2-core machine.
    settings.setSchedulingDisabled(true);
    // Keep meta.source as sent. HAPI's default (SOURCE_URI_AND_REQUEST_ID) appends "#<request id>" to it, so a
    // resource never reads back as written; hapi.fhir.org does this (docs/conformance.md, "HAPI").
    settings.setStoreMetaSourceInformation(JpaStorageSettings.StoreMetaSourceInformationEnum.SOURCE_URI);
    return settings;
  }

  @Bean
  public PartitionSettings partitionSettings() {
    return new PartitionSettings();
  }

  @Bean
  public SubscriptionSettings subscriptionSettings() {
    return new SubscriptionSettings();
  }

  @Bean
  public IBinaryStorageSvc binaryStorageSvc() {
    return new MemoryBinaryStorageSvcImpl();
  }

  @Primary
  @Bean
  public LocalContainerEntityManagerFactoryBean entityManagerFactory(
      ConfigurableListableBeanFactory beanFactory, FhirContext fhirContext, JpaStorageSettings storageSettings) {
    LocalContainerEntityManagerFactoryBean factory =
        HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
    factory.setPersistenceUnitName("HAPI_PU");
    factory.setDataSource(dataSource());
    Properties properties = new Properties();
    properties.put("hibernate.dialect", HapiFhirH2Dialect.class.getName());
    properties.put("hibernate.hbm2ddl.auto", "update");
    properties.put("hibernate.format_sql", "false");
    properties.put("hibernate.show_sql", "false");
    properties.put("hibernate.search.enabled", "false"); // no Lucene/Elasticsearch full-text index
    factory.setJpaProperties(properties);
    return factory;
  }

  @Primary
  @Bean
  public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
    return new JpaTransactionManager(entityManagerFactory);
  }
}
